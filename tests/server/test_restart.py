"""SIGKILL mid-queue and restart: finished results still fetchable, the running job reported
interrupted (and resubmittable by id), the queued job kept and run, the finished clip's
inversion read back from the disk cache, then SHUTDOWN by token."""

from __future__ import annotations

import signal
import time

import numpy as np

from server import protocol as P
from serverkit import EngineProcess, clip, wait_progress


def test_sigkill_mid_queue_then_restart(tmp_path):
    state = tmp_path / "state"
    first = EngineProcess(state).start()
    c = first.client()
    done = c.submit("add glasses", frames=clip(2, seed=20), settings={"steps": 2, "face_mode": "full"}, job="done-before")
    assert c.wait(done["job"], timeout=120)["state"] == "done"
    before = c.result("done-before").frames
    deadline = time.monotonic() + 60  # the inversion reaches the disk cache in the background
    while (cache := c.list()["cache"])["disk_entries"] < 1 or cache["disk_writes_pending"]:
        assert time.monotonic() < deadline, cache
        time.sleep(0.05)
    running = c.submit("add glasses", frames=clip(4, seed=21), settings={"steps": 60, "face_mode": "full"}, job="running-at-crash")
    queued = c.submit("add a hat", frames=clip(2, seed=22), settings={"steps": 2, "face_mode": "full"}, job="queued-at-crash")
    wait_progress(c, running["job"])
    c.close()
    assert first.kill(signal.SIGKILL) == -signal.SIGKILL

    second = EngineProcess(state, port=first.port).start()
    c = second.client()
    try:
        after = c.result("done-before")
        assert after.status == P.DONE and all(np.array_equal(a, b) for a, b in zip(before, after.frames))
        crashed = c.result("running-at-crash")
        assert crashed.status == P.FAILED and crashed.state == "interrupted" and crashed.code == "interrupted"
        assert c.wait(queued["job"], timeout=120)["state"] == "done"
        # a re-edit of the clip finished before the crash goes straight to editing
        reedit = c.submit("make him smile", frames=clip(2, seed=20), settings={"steps": 2, "face_mode": "full"}, job="reedit")
        assert c.wait(reedit["job"], timeout=120)["state"] == "done"
        stats = c.result("reedit", pixels=False).stats
        assert stats["inversion_cache"] == "hit" and "inversion" not in stats["unet_evals"]
        assert stats["cache"]["disk_hits"] == 1
        # a plain resend is recognised (not rerun); with retry it runs again under the same id
        resend = c.submit("add glasses", frames=clip(4, seed=21), settings={"steps": 60, "face_mode": "full"}, job="running-at-crash")
        assert resend["duplicate"] is True and resend["state"] == "interrupted"
        retry = c.submit("add glasses", frames=clip(4, seed=21), settings={"steps": 60, "face_mode": "full"}, job="running-at-crash",
                         retry=True)
        assert retry["duplicate"] is False
        wait_progress(c, "running-at-crash")
        assert c.status("running-at-crash")["attempts"] == 2
        c.shutdown(second.token)
        assert second.proc.wait(60) == 0
    finally:
        c.close()
        second.kill()
    third = EngineProcess(state).start()  # a clean shutdown interrupts the running job the same way
    try:
        with third.client() as c3:
            assert c3.status("running-at-crash")["state"] == "interrupted"
            assert c3.result("queued-at-crash").status == P.DONE
    finally:
        third.kill(signal.SIGTERM)
