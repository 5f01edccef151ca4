"""RESULT with `preview: true` on a running job returns its first finished keyframe (for clients
that poll instead of listening to events), and nothing once the job is done.

The in-process `Service` with an editor double that shows a keyframe and then waits on a gate,
so the running-with-a-preview state is held as long as the test needs it."""

from __future__ import annotations

import numpy as np

from server import protocol as P
from serverkit import EchoEditor, EchoResult, InProcess


class GatedEditor(EchoEditor):
    def edit(self, frames, prompt, settings, *, progress, cancel, inversions=None, preview=None):
        edited = [255 - f for f in frames]
        progress("decode", 0, 0.9)
        preview(2, edited[2])
        self.started.set()
        assert self.gate.wait(30)
        return EchoResult(edited)


def test_result_preview_while_running(tmp_path):
    editor = GatedEditor()
    editor.gate.clear()
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (16, 24, 4), dtype=np.uint8) for _ in range(4)]
    with InProcess(tmp_path, editor) as eng, eng.client(timeout=30) as c:
        job = c.submit("invert", frames=frames, events=False)["job"]
        assert editor.started.wait(30)
        pending = c.result(job, preview=True)
        assert pending.status == P.PENDING and pending.frames is None
        index, frame = pending.preview
        assert index == 2 and frame.shape == (16, 24, 4)
        assert np.array_equal(frame[..., :3], 255 - frames[2][..., :3])
        assert np.array_equal(frame[..., 3], frames[2][..., 3])  # alpha re-attached
        assert c.result(job).preview is None  # only when asked
        editor.gate.set()
        assert c.wait(job, timeout=30)["state"] == "done"
        done = c.result(job, preview=True)
        assert done.status == P.DONE and done.preview is None and np.array_equal(done.frames[2], frame)
