"""Fixtures: a real engine (tiny preset) whose media root is the plugin's work folder, a camera
sequence on disk, and a fresh in-memory Resolve with that shot cut into a timeline."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))  # serverkit

from engine.io import write_frames  # noqa: E402
from resolvekit import build_resolve  # noqa: E402
from serverkit import shared_engine  # noqa: E402


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch):
    from plugin_resolve import engine_link, render

    monkeypatch.setattr(render, "POLL_S", 0.005)
    monkeypatch.setattr(engine_link, "POLL_S", 0.05)


@pytest.fixture(scope="session")
def media_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("resolve-media")


@pytest.fixture(scope="session")
def shot(media_root) -> str:
    """A 16-bit TIFF camera sequence shot_1001..1020 (48×64), each frame different."""
    rng = np.random.default_rng(11)
    base = rng.integers(0, 65536, (48, 96, 3), dtype=np.uint16)
    write_frames([np.ascontiguousarray(base[:, i:i + 64]) for i in range(20)], media_root / "camera", start=1001,
                 fmt="tif")
    for p in sorted((media_root / "camera").glob("frame_*.tif")):
        p.rename(p.with_name(p.name.replace("frame_00", "shot_")))
    return str(media_root / "camera" / "shot_%04d.tif")


@pytest.fixture(scope="session")
def engine(tmp_path_factory, media_root):
    with shared_engine(tmp_path_factory.mktemp("resolve-engine") / "state", media_root) as proc:
        yield proc


@pytest.fixture
def work_dir(media_root, request) -> Path:
    return media_root / "work" / request.node.name


@pytest.fixture
def resolve(shot):
    return build_resolve(shot)
