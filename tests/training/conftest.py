"""Training fixtures: 16 real face images made from packaged photos, single-threaded torch.

On a shared 2-core machine one intra-op thread is 10× faster and far steadier than two
(OpenMP threads spin against other processes), so these tests run with one.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def faces(tmp_path_factory):
    """16 face crops, 96², of astronaut / grace_hopper (crops, flips, colour jitter) + captions."""
    from engine.training.samples import make_face_folder

    return make_face_folder(tmp_path_factory.mktemp("faces"), n=16, size=96, seed=0)


def tiny_config(role: str, data, out, **kw):
    from engine.training import TrainConfig

    base = dict(role=role, data=str(data), out=str(out), model="tiny", resolution=64, batch_size=2,
                max_steps=3, workers=0, checkpoint_every=0, sample_every=0, learning_rate=1e-3, cpu=True,
                face_embedder="tiny", clip="tiny", edits="builtin" if role == "direction" else None)
    base.update(kw)
    return TrainConfig(**base)
