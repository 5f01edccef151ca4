"""Against a real engine process (tiny preset, loopback): submit → progress → result, cancel, two
clients, resend dedupe, re-edit skipping inversion, previews, release, paths and refusals."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import zmq

from server import protocol as P
from server.client import EngineError, EngineGone
from serverkit import clip, free_port, wait_progress

FAST = {"steps": 2, "face_mode": "full"}  # the clips are noise: no face, so edit whole frames
SLOW = {"steps": 50, "face_mode": "full"}


def test_submit_progress_result(client):
    frames = clip(3, seed=1)
    acc = client.submit("add glasses", frames=frames, settings=FAST)
    assert acc["type"] == "ACCEPTED" and acc["duplicate"] is False and acc["position"] >= 1
    events = list(client.events(acc["job"], timeout=120))
    progress = [e for e in events if e["type"] == "PROGRESS"]
    assert progress and {"stage", "step", "steps", "fraction", "frames", "frames_done", "eta_s"} <= set(progress[0])
    assert {e["stage"] for e in progress} >= {"invert", "edit"}
    assert events[-1]["type"] == "STATE" and events[-1]["job"]["state"] == "done"
    assert events[-1]["job"]["progress"]["frames_done"] == 3
    res = client.result(acc["job"])
    assert res.status == P.DONE and len(res.frames) == 3
    assert res.frames[0].shape == (64, 64, 3) and res.frames[0].dtype == np.uint8
    assert res.stats["random_weights"] is True and res.stats["inversion_cache"] == "miss"


def test_progress_carries_the_first_finished_keyframe(client):
    frames = clip(5, seed=6, channels=4, dtype=np.float16)
    acc = client.submit("add glasses", frames=frames, settings={**FAST, "keyframes": [1, 4]})
    shown = [e for e in client.events(acc["job"], timeout=120) if e["type"] == "PROGRESS" and e.get("preview")]
    assert len(shown) == 1
    ev = shown[0]
    assert ev["preview"]["frame"] == 1 and ev["stage"] == "decode"
    res = client.result(acc["job"])
    assert ev["preview_frame"].dtype == np.float16 and ev["preview_frame"].shape == (64, 64, 4)
    assert np.array_equal(ev["preview_frame"], res.frames[1])  # the final frame, alpha included


def test_rgba_half_float_round_trip_keeps_alpha(client):
    frames = clip(2, seed=2, channels=4, dtype=np.float16)
    acc = client.submit("add a hat", frames=frames, settings=FAST)
    assert client.wait(acc["job"], timeout=120)["state"] == "done"
    res = client.result(acc["job"])
    assert res.frames[0].dtype == np.float16 and res.frames[0].shape == (64, 64, 4)
    for got, sent in zip(res.frames, frames):
        assert np.array_equal(got[..., 3], sent[..., 3])


def test_reedit_of_same_clip_skips_inversion(client):
    frames = clip(3, seed=3)
    first = client.submit("add glasses", frames=frames, settings=FAST)
    client.wait(first["job"], timeout=120)
    again = client.submit("make the hair red", frames=frames, settings=FAST)
    client.wait(again["job"], timeout=120)
    a, b = client.result(first["job"]).stats, client.result(again["job"]).stats
    assert a["inversion_cache"] == "miss" and b["inversion_cache"] == "hit"
    assert "inversion" in a["unet_evals"] and "inversion" not in b["unet_evals"]
    same = client.submit("add glasses", frames=frames, settings=FAST)  # cached inversion: identical output
    client.wait(same["job"], timeout=120)
    for x, y in zip(client.result(first["job"]).frames, client.result(same["job"]).frames):
        assert np.array_equal(x, y)


def test_resend_after_reconnect_runs_once(engine, client):
    frames = clip(2, seed=4)
    job = f"resend-{time.monotonic_ns()}"
    client.submit("add glasses", frames=frames, settings=FAST, job=job)
    other = engine.client()  # a new connection, as after a reconnect
    try:
        again = other.submit("add glasses", frames=frames, settings=FAST, job=job)
        assert again["duplicate"] is True
        assert other.wait(job, timeout=120)["attempts"] == 1
        with pytest.raises(EngineError) as err:
            other.submit("something else", frames=frames, settings=FAST, job=job)
        assert err.value.code == "conflict"
        assert sum(j["id"] == job for j in other.list()["jobs"]) == 1
    finally:
        other.close()


def test_cancel_queued_and_running(client):
    running = client.submit("add glasses", frames=clip(4, seed=5), settings=SLOW)
    queued = client.submit("add glasses", frames=clip(2, seed=6), settings=SLOW)
    wait_progress(client, running["job"])
    info = client.cancel(queued["job"])
    assert info["state"] == "cancelled"
    t0 = time.monotonic()
    assert client.cancel(running["job"])["cancel_requested"] is True
    final = client.wait(running["job"], timeout=60)
    assert final["state"] == "cancelled" and time.monotonic() - t0 < 10
    res = client.result(running["job"])
    assert res.status == P.FAILED and res.code == "cancelled"
    assert client.result(queued["job"]).code == "cancelled"


def test_two_clients_at_once_and_answers_while_busy(engine):
    a, b = engine.client(), engine.client()
    try:
        long_job = a.submit("add glasses", frames=clip(4, seed=7), settings={"steps": 20, "face_mode": "full"})
        wait_progress(a, long_job["job"])
        t0 = time.monotonic()
        listing = b.list()
        assert time.monotonic() - t0 < 1.0 and listing["running"] == long_job["job"]
        out: dict = {}

        def run(c, name, seed):
            acc = c.submit(name, frames=clip(2, seed=seed), settings=FAST)
            out[name] = (acc["job"], c.wait(acc["job"], timeout=180)["state"])

        threads = [threading.Thread(target=run, args=(b, "b", 8))]
        threads[0].start()
        run(a, "a", 9)
        threads[0].join(180)
        assert out["a"][1] == "done" and out["b"][1] == "done"
        assert a.result(out["a"][0]).frames and b.result(out["b"][0]).frames
    finally:
        a.close()
        b.close()


def test_preview_edits_one_frame(client):
    acc = client.preview("add glasses", frame=1, frames=clip(3, seed=10), settings=FAST)
    assert client.wait(acc["job"], timeout=120)["kind"] == "preview"
    res = client.result(acc["job"])
    assert len(res.frames) == 1 and res.stats["frames"] == 1


def test_unknown_jobs_are_answered(client):
    assert client.result("never-submitted").status == P.UNKNOWN
    assert client.status("never-submitted")["state"] == "unknown"
    with pytest.raises(EngineError) as err:
        client.cancel("never-submitted")
    assert err.value.code == "unknown_job"


def test_release_frees_results(client):
    acc = client.submit("add glasses", frames=clip(2, seed=11), settings=FAST)
    client.wait(acc["job"], timeout=120)
    assert client.release(acc["job"]) > 0
    assert client.result(acc["job"]).status == P.UNKNOWN


def test_heartbeats_reach_a_quiet_client(engine):
    c = engine.client()
    try:
        c.events_buf.clear()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not c.last_heartbeat:
            c._recv(0.2)
        assert c.last_heartbeat.get("type") == "HEARTBEAT" and "worker_beat_age_s" in c.last_heartbeat
    finally:
        c.close()


def test_shutdown_needs_the_token(client):
    with pytest.raises(EngineError) as err:
        client.shutdown("wrong-token")
    assert err.value.code == "unauthorised"


@pytest.mark.parametrize("path", ["../etc/passwd", "{root}/../outside", "/etc/passwd", "{root}/link/x.png"])
def test_path_traversal_refused(client, media_root, tmp_path, path):
    link = media_root / "link"
    if not link.exists():
        link.symlink_to(tmp_path)
    with pytest.raises(EngineError) as err:
        client.submit("add glasses", input=path.format(root=media_root), settings=FAST)
    assert err.value.code == "path_refused" and "refused" in err.value.message
    with pytest.raises(EngineError) as err:
        client.submit("add glasses", frames=clip(1), settings=FAST,
                      output={"mode": "path", "dir": str(media_root / "link" / "out")})
    assert err.value.code == "path_refused"


def test_path_valued_settings_are_confined(client):
    from engine.settings import path_fields

    assert "face_reference" in path_fields()
    for name in path_fields():
        with pytest.raises(EngineError) as err:
            client.submit("add glasses", frames=clip(1), settings={**FAST, name: "/etc/passwd"})
        assert err.value.code == "path_refused"


def test_paths_inside_media_root(client, media_root):
    from engine.io import write_frames

    src = media_root / "shot"
    write_frames(clip(2, seed=12), src, start=1001)
    acc = client.submit("add glasses", input=str(src), settings=FAST,
                        output={"mode": "path", "dir": str(media_root / "out"), "format": "png"})
    assert client.wait(acc["job"], timeout=120)["state"] == "done"
    res = client.result(acc["job"])
    assert [p.rsplit("/", 1)[-1] for p in res.output["paths"]] == ["frame_001001.png", "frame_001002.png"]
    assert (media_root / "out" / "RANDOM_WEIGHTS.txt").exists()


def test_limits_and_bad_requests_answered(engine, client):
    with pytest.raises(EngineError) as err:  # more frames than --max-frames 32
        client.submit("x", frames=clip(33, size=8), settings=FAST)
    assert err.value.code == "too_large"
    with pytest.raises(EngineError) as err:
        client.submit("x", frames=clip(1), settings={"steps": 0})
    assert err.value.code == "bad_settings"
    with pytest.raises(EngineError) as err:
        client.submit("x", frames=clip(1), settings={"stepz": 3})
    assert err.value.code == "bad_settings" and "stepz" in err.value.message
    with pytest.raises(EngineError) as err:
        client.submit("x" * 1001, frames=clip(1), settings=FAST)
    assert err.value.code == "bad_field"


def test_part_above_maxmsgsize_drops_only_that_connection(engine, client):
    ctx = zmq.Context.instance()
    rogue = ctx.socket(zmq.DEALER)
    rogue.setsockopt(zmq.LINGER, 0)
    rogue.connect(engine.address)
    try:
        rogue.send_multipart(P.pack({"type": "HEARTBEAT", "id": 1}, [b"\0" * ((1 << 20) + 1)]))
        assert rogue.poll(1500) == 0  # libzmq drops the connection before the engine sees the message
    finally:
        rogue.close()
    assert client.heartbeat()["type"] == "HEARTBEAT"


def test_client_without_engine_reports_gone():
    from server.client import Client

    c = Client(f"tcp://127.0.0.1:{free_port()}", timeout=0.5, retries=1)
    with pytest.raises(EngineGone):
        c.connect()
    c.close()
