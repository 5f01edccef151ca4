"""The real Service in this process (editor double): per-client order of pipelined requests,
replies never dropped at the high-water mark, a full disk (job, SUBMIT, RELEASE), a stuck
worker in HEARTBEAT, result retention, prompt-cut warnings, private state files."""

from __future__ import annotations

import errno
import logging
import os
import stat
import time

import msgpack
import pytest
import zmq

from server import protocol as P
from server.client import EngineError
from server.jobs import JobStore
from serverkit import EchoEditor, InProcess, clip


def dealer(address: str, rcvhwm: int = 1000) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVHWM, rcvhwm)
    sock.connect(address)
    return sock


def replies(sock: zmq.Socket, n: int, timeout: float = 20.0) -> list[dict]:
    """The next `n` replies (events skipped), in arrival order; bounded wait."""
    got, deadline = [], time.monotonic() + timeout
    while len(got) < n:
        assert sock.poll(max(1, int((deadline - time.monotonic()) * 1000))), f"only {len(got)} of {n} replies"
        header = msgpack.unpackb(sock.recv_multipart()[1])
        if "re" in header:
            got.append(header)
    return got


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_pipelined_submit_status_cancel_are_answered_in_order(tmp_path):
    with InProcess(tmp_path / "state") as eng:
        eng.editor.gate.clear()  # the first job would run until cancelled
        sock = dealer(eng.address)
        frames = clip(4, size=512, channels=4, dtype="float32")  # 16 MB: ingest takes a while on the I/O thread
        for j in range(5):
            sock.send_multipart(P.pack({"type": "SUBMIT", "id": f"s{j}", "job": f"j{j}", "prompt": "x",
                                        "frames": P.describe(frames)}, P.as_buffers(frames)))
            sock.send_multipart(P.pack({"type": "STATUS", "id": f"t{j}", "job": f"j{j}"}))
            sock.send_multipart(P.pack({"type": "CANCEL", "id": f"c{j}", "job": f"j{j}"}))
        got = replies(sock, 15)
        assert [r["re"] for r in got] == [f"{k}{j}" for j in range(5) for k in "stc"]
        for a, s, c in zip(got[0::3], got[1::3], got[2::3]):
            assert a["type"] == "ACCEPTED" and s["job"]["state"] in ("queued", "running")
            assert c["type"] == "STATE" and (c["job"]["state"] == "cancelled" or c["job"]["cancel_requested"])
        with eng.client() as cl:
            wait_for(lambda: all(cl.status(f"j{j}")["state"] == "cancelled" for j in range(5)))
        sock.close()


def test_replies_are_never_dropped_when_the_client_reads_late(tmp_path):
    with InProcess(tmp_path / "state", sndhwm=8) as eng:
        sock = dealer(eng.address, rcvhwm=8)
        for i in range(1000):
            sock.send_multipart(P.pack({"type": "STATUS", "id": i, "job": "nope"}))
        time.sleep(0.5)  # everything the engine could send has hit both high-water marks
        got = replies(sock, 1000)
        assert [r["re"] for r in got] == list(range(1000))
        sock.close()


def test_heartbeat_reports_a_stuck_worker(tmp_path):
    with InProcess(tmp_path / "state", stuck_after_s=0.3) as eng, eng.client() as c:
        assert c.heartbeat()["worker"] == "alive"
        eng.editor.gate.clear()
        c.submit("x", frames=clip(1, size=8))
        assert eng.editor.started.wait(10)
        time.sleep(0.5)
        beat = c.heartbeat()
        assert beat["busy"] is True and beat["worker"] == "stuck" and beat["worker_beat_age_s"] > 0.3


def test_a_dead_worker_shows_in_heartbeat_and_submit_is_refused(tmp_path):
    with InProcess(tmp_path / "state") as eng, eng.client() as c:
        eng.service.worker.stopping.set()  # the worker thread ends, as if it had died
        eng.service.worker.join(10)
        assert c.heartbeat()["worker"] == "dead"
        with pytest.raises(EngineError) as err:
            c.submit("x", frames=clip(1, size=8))
        assert err.value.code == "unavailable"


def test_submit_is_refused_when_the_disk_has_no_room(tmp_path):
    with InProcess(tmp_path / "state", min_free_bytes=2 ** 62) as eng, eng.client() as c:
        with pytest.raises(EngineError) as err:
            c.submit("x", frames=clip(1, size=8), job="nospace")
        assert err.value.code == "disk_full" and "free" in err.value.message
        assert c.status("nospace")["state"] == "unknown"
        assert not list((tmp_path / "state" / "jobs").iterdir())


class FullDisk(JobStore):
    """A job store whose disk fills up when `full` is set: file writes fail with ENOSPC."""

    full = False

    def write(self, path, chunks):
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return super().write(path, chunks)


def test_disk_full_fails_the_job_and_the_worker_survives_a_failing_database(tmp_path):
    from server.cache import InversionCache
    from server.joblog import JobLog
    from server.security import MediaRoots
    from server.worker import Worker

    store, editor = FullDisk(tmp_path / "state", fsync=False), EchoEditor()
    worker = Worker(store, editor, InversionCache(0), MediaRoots([]), lambda *a: None, "echo", True,
                    JobLog(logging.getLogger("ipfacediff.tests.engine")))
    worker.start()
    try:
        frames = [memoryview(f).cast("B") for f in clip(1, size=8)]
        request = {"prompt": "x", "frames": P.describe(clip(1, size=8))}
        editor.gate.clear()
        first = store.add("first", "edit", "fp1", request, frames)
        assert editor.started.wait(10)
        store.full = True  # the result cannot be written
        store.db.close()  # and SQLite fails inside the error handler ("database or disk is full")
        editor.gate.set()
        wait_for(lambda: first.state == "failed")
        assert first.code == "disk_full" and "disk is full" in first.error
        store.full = False
        store.db = __import__("sqlite3").connect(store.dir / "jobs.sqlite3", check_same_thread=False,
                                                 isolation_level=None)
        second = store.add("second", "edit", "fp2", request, frames)
        wait_for(lambda: second.state == "done")
        assert worker.is_alive()
    finally:
        worker.stopping.set()
        worker.join(10)
    reopened = JobStore(tmp_path / "state", fsync=False)  # the first job's row was written late, not lost
    assert reopened.jobs["first"].state == "failed" and reopened.jobs["first"].code == "disk_full"


def test_release_frees_files_even_when_the_database_cannot_be_written(tmp_path):
    store = JobStore(tmp_path / "state", fsync=False)
    job = store.add("done", "edit", "fp", {"prompt": "x"}, [b"\0" * 4096])
    store.finish(job, "done", result={"mode": "inline"})
    store.db.close()  # every write to the job table now fails
    assert store.release(job) == 4096
    assert not store.folder("done").exists() and "done" not in store.jobs
    assert "done" not in JobStore(tmp_path / "state", fsync=False).jobs  # and it stays released


def test_temporary_files_of_failed_and_killed_submits_are_removed(tmp_path):
    store = JobStore(tmp_path / "state", fsync=False)

    def chunks():
        yield b"\0" * 100
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        store.add("failed", "edit", "fp", {"prompt": "x"}, chunks())
    assert not store.folder("failed").exists() and "failed" not in store.jobs
    killed = store.folder("killed")
    killed.mkdir()
    (killed / ".input.raw.tmp123.456").write_bytes(b"\0" * 100)  # as a SIGKILL mid-write leaves it
    JobStore(tmp_path / "state", fsync=False)
    assert not list(killed.iterdir())


def test_state_dir_and_its_files_are_private_whatever_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with InProcess(tmp_path / "state", cache_disk_bytes=1 << 20) as eng, eng.client() as c:
            acc = c.submit("x", frames=clip(1, size=8))
            c.wait(acc["job"], timeout=30)
            assert c.result(acc["job"]).frames
    finally:
        os.umask(old)
    state = tmp_path / "state"
    for path in [state, state / "jobs", state / "inversions", *state.glob("jobs/*")]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    files = [p for p in state.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"jobs.sqlite3", "input.raw", "result.raw", "shutdown.token"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_finished_jobs_expire_and_the_oldest_go_first_beyond_the_byte_budget(tmp_path):
    store = JobStore(tmp_path / "state", fsync=False)
    jobs = []
    for i, finished in enumerate([100.0, 200.0, 300.0]):
        job = store.add(f"j{i}", "edit", "fp", {"prompt": "x"}, [b"\0" * 1000])
        store.finish(job, "done")
        job.finished = finished
        jobs.append(job)
    running = store.add("queued", "edit", "fp", {"prompt": "x"}, [b"\0" * 1000])
    assert store.expired(now=350.0, keep_s=1000.0, max_bytes=10 ** 6) == []
    assert store.expired(now=350.0, keep_s=100.0, max_bytes=10 ** 6) == jobs[:2]  # finished before 250
    assert store.expired(now=350.0, keep_s=1000.0, max_bytes=2500) == jobs[:1]  # oldest first, until it fits
    assert running not in store.expired(now=10 ** 9, keep_s=1.0, max_bytes=0)


def test_the_engine_releases_expired_results_by_itself(tmp_path):
    with InProcess(tmp_path / "state", keep_results_s=0.3, sweep_s=0.1) as eng, eng.client() as c:
        acc = c.submit("x", frames=clip(1, size=8))
        assert c.wait(acc["job"], timeout=30)["state"] == "done"
        wait_for(lambda: c.result(acc["job"], pixels=False).status == P.UNKNOWN)
        assert not list((tmp_path / "state" / "jobs").iterdir())


def test_a_prompt_longer_than_the_text_encoder_says_where_it_is_cut(tmp_path):
    long = "add round glasses with thin golden frames " * 3  # one token a letter: 105, the encoder reads 75
    with InProcess(tmp_path / "state") as eng, eng.client() as c:
        acc = c.submit(long, frames=clip(1, size=8))
        assert len(acc["warnings"]) == 1
        assert acc["warnings"][0].startswith("the prompt is 105 tokens but the text encoder reads 75; it is cut "
                                             "after word 15 ('…thin golden frames add')")
        c.wait(acc["job"], timeout=30)
        assert c.result(acc["job"], pixels=False).warnings == acc["warnings"]
        short = c.submit("add glasses", frames=clip(1, size=8), settings={"negative_prompt": "blurry " * 20})
        assert len(short["warnings"]) == 1 and short["warnings"][0].startswith("the negative_prompt is ")
        assert c.submit("add glasses", frames=clip(1, size=8))["warnings"] == []


def test_a_client_that_never_reads_cannot_queue_more_than_max_pending(tmp_path):
    with InProcess(tmp_path / "state", sndhwm=4, max_pending=10) as eng:
        with eng.client() as c:
            assert c.info["limits"]["max_pending"] == 10  # told in HELLO
        sock = dealer(eng.address, rcvhwm=4)
        for i in range(300):
            sock.send_multipart(P.pack({"type": "STATUS", "id": i, "job": "nope"}))
        time.sleep(0.5)
        got, quiet_since = [], time.monotonic()
        while time.monotonic() - quiet_since < 0.5:  # until no reply for 0.5 s (heartbeat events go on)
            if sock.poll(100) and "re" in (header := msgpack.unpackb(sock.recv_multipart()[1])):
                got.append(header["re"])
                quiet_since = time.monotonic()
        assert 10 < len(got) < 300 and got == sorted(set(got)) and got[:10] == list(range(10))  # in order, excess dropped
        sock.send_multipart(P.pack({"type": "HEARTBEAT", "id": "after"}))
        assert replies(sock, 1)[0]["re"] == "after"  # the client is served again once it reads
        sock.close()


def test_keep_results_takes_seconds_or_a_unit():
    import argparse

    from server.cli import duration

    assert [duration(t) for t in ("90", "90s", "30m", "12h", "7d", "1.5h")] == [90, 90, 1800, 43200, 604800, 5400]
    for bad in ("", "7w", "d", "-1d", "0", "inf", "nan"):
        with pytest.raises(argparse.ArgumentTypeError):
            duration(bad)


def test_a_state_dir_holding_other_files_is_refused_and_left_alone(tmp_path):
    from engine.errors import UserError

    mine = tmp_path / "mine"
    mine.mkdir(mode=0o755)
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(UserError, match="already holds other files"):
        JobStore(mine)
    assert stat.S_IMODE(mine.stat().st_mode) == 0o755 and (mine / "notes.txt").read_text() == "keep"
    JobStore(tmp_path / "state").close()
    JobStore(tmp_path / "state").close()  # the engine's own state dir opens again
