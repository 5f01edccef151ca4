"""A chunk whose rebuild disagrees with the Keyframes step (another kind of node) is refused
before it writes anything, and the other chunks' frames stay as they were."""

from __future__ import annotations

import io

import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from engine.errors import UserError
from engine.farm import steps
from engine.farm.status import TaskStatus


def test_a_chunk_whose_keyframes_differ_from_the_keyframes_step_writes_nothing(tiny_editor, shot, tmp_path, farm,
                                                                              make_spec):
    out, job = farm(tiny_editor, shot, tmp_path, 6, order=[0])
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    data = load_file(str(job.keyframes))
    with safe_open(str(job.keyframes), "pt") as f:
        metadata = f.metadata()
    data["edited"] = data["edited"] + 1e-3  # as computed by a node that rounds differently
    save_file(data, str(job.keyframes), metadata=metadata)
    with pytest.raises(UserError, match="rebuilds the keyframes"):
        steps.propagate(make_spec(6), 1, str(shot), out, job, None, TaskStatus(io.StringIO()), editor=tiny_editor)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert len([n for n in before if n.startswith("frame_edit_")]) == 4
