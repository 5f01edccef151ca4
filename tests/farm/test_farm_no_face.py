"""A farm job on a shot with no face behaves as `ipfacediff edit` in auto mode (issue 15 item 5):
no model runs, every chunk writes its frames unchanged, and the Keyframes stats, `done` and the
task status say so; nothing is edited whole."""

from __future__ import annotations

import io
import json

import numpy as np

from engine.editor import NO_FACE
from engine.farm import steps
from engine.farm.spec import FarmSpec, JobFolder
from engine.farm.status import TaskStatus
from engine.settings import Settings


def test_a_shot_without_a_face_passes_through_every_farm_step_unchanged(tiny_editor, shot, tmp_path, read_pngs):
    spec = FarmSpec(prompt="add glasses", settings=Settings(steps=2).to_dict(), first=1001, count=10, chunk_size=5,
                    preset="tiny", name="frame_edit_%06d")  # auto mode, a noise shot
    out, job, said = tmp_path / "out", JobFolder(tmp_path / "job"), io.StringIO()
    status = TaskStatus(said)
    calls: list[int] = []
    handles = [u.register_forward_pre_hook(lambda *_: calls.append(1)) for u in tiny_editor.models.unets()]
    try:
        stats = steps.keyframes(spec, str(shot), out, job, None, status, editor=tiny_editor)
        for chunk in range(len(spec.chunks)):
            steps.propagate(spec, chunk, str(shot), out, job, None, status, editor=tiny_editor)
        done = steps.assemble(spec, str(shot), out, job, status)
    finally:
        for handle in handles:
            handle.remove()
    assert calls == [] and stats["no_face"] is True and stats["warnings"] == [NO_FACE]
    assert done["no_face"] is True and json.loads(job.done.read_text())["warnings"] == [NO_FACE]
    assert f"openjd_status: warning: {NO_FACE}" in said.getvalue().splitlines()
    source, written = read_pngs(shot), read_pngs(out)
    assert len(written) == 10
    for name, frame in source.items():
        assert np.array_equal(written[name.replace("frame_", "frame_edit_")], frame), name
