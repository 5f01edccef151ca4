"""RESULT with `preview: true` on a running job returns its first finished keyframe (for clients
that poll instead of listening to events), and nothing once the job is done.

An in-process `Service` with a stand-in editor that shows a keyframe and then waits on a gate,
so the running-with-a-preview state is held as long as the test needs it."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np

from server import protocol as P
from server.client import Client
from server.launch import free_port
from server.service import Options, Service


class GatedEditor:
    models = SimpleNamespace(identity_string="gated", random_weights=True, device="cpu", dtype="float32")

    def __init__(self):
        self.gate, self.shown = threading.Event(), threading.Event()

    def edit(self, frames, prompt, settings=None, *, progress=None, cancel=None, inversions=None, preview=None):
        edited = [255 - f for f in frames]
        progress("decode", 0, 0.9)
        preview(2, edited[2])
        self.shown.set()
        assert self.gate.wait(30)
        return SimpleNamespace(frames=edited, stats={}, qc=None, inversion=None)


def test_result_preview_while_running(tmp_path):
    editor = GatedEditor()
    port = free_port()
    service = Service(editor, Options(bind=f"tcp://127.0.0.1:{port}", state_dir=tmp_path, fsync=False))
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    assert service.ready.wait(30)
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (16, 24, 4), dtype=np.uint8) for _ in range(4)]
    try:
        with Client(f"tcp://127.0.0.1:{port}", timeout=30) as c:
            c.connect()
            job = c.submit("invert", frames=frames, events=False)["job"]
            assert editor.shown.wait(30)
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
    finally:
        editor.gate.set()
        service.stop()
        thread.join(30)
