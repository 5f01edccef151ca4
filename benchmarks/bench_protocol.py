"""Round trip of 1920×1080 RGBA half-float frames: SUBMIT + RESULT through the real server vs raw pyzmq.

In: --frames N, --repeat R, --state-dir (default: a temp dir on disk), --no-fsync. Out: a
markdown table on stdout. The server runs in this process with an echo editor (frames back
unchanged), so the numbers measure transport, validation, persistence and the result path,
not diffusion. "raw" is a DEALER→ROUTER→DEALER echo of the same bytes with copy=False.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import zmq

from server import protocol as P
from server.client import Client
from server.service import Options, Service


class EchoEditor:
    models = SimpleNamespace(identity_string="echo", random_weights=False, device="cpu", dtype="float32")

    def edit(self, frames, prompt, settings=None, *, progress=None, cancel=None, inversion=None):
        return SimpleNamespace(frames=list(frames), stats={}, inversion=None)


def raw_round_trip(frames: list[np.ndarray], port: int, repeat: int) -> list[float]:
    ctx = zmq.Context.instance()
    router = ctx.socket(zmq.ROUTER)
    router.bind(f"tcp://127.0.0.1:{port}")

    def echo():
        for _ in range(repeat):
            parts = router.recv_multipart(copy=False)
            router.send_multipart(parts, copy=False)

    t = threading.Thread(target=echo, daemon=True)
    t.start()
    dealer = ctx.socket(zmq.DEALER)
    dealer.connect(f"tcp://127.0.0.1:{port}")
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        dealer.send_multipart([b"hdr", *P.as_buffers(frames)], copy=False)
        back = dealer.recv_multipart(copy=False)
        times.append(time.perf_counter() - t0)
        assert len(back) == len(frames) + 1
    t.join(10)
    dealer.close(0)
    router.close(0)
    return times


def server_round_trip(frames: list[np.ndarray], port: int, repeat: int, state_dir: Path, fsync: bool):
    service = Service(EchoEditor(), Options(bind=f"tcp://127.0.0.1:{port}", state_dir=state_dir, fsync=fsync,
                                            sndhwm=4, rcvhwm=4))
    threading.Thread(target=service.run, daemon=True).start()
    service.ready.wait(30)
    client = Client(f"tcp://127.0.0.1:{port}", timeout=120)
    client.connect()
    totals, legs = [], []
    for i in range(repeat):
        t0 = time.perf_counter()
        acc = client.submit("echo", frames=frames, job=f"bench-{i}-{time.time_ns()}", events=False)
        t1 = time.perf_counter()
        while client.status(acc["job"])["state"] != "done":
            time.sleep(0.002)
        t2 = time.perf_counter()
        res = client.result(acc["job"])
        t3 = time.perf_counter()
        assert len(res.frames) == len(frames) and np.array_equal(res.frames[-1], frames[-1])
        totals.append(t3 - t0)
        legs.append((t1 - t0, t2 - t1, t3 - t2))
        client.release(acc["job"])
    client.close()
    service.stop()
    return totals, legs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--state-dir", type=Path)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    frames = [rng.random((1080, 1920, 4), dtype=np.float32).astype(np.float16) for _ in range(args.frames)]
    nbytes = sum(f.nbytes for f in frames)
    base = args.state_dir or Path(tempfile.mkdtemp(prefix="ipfd-bench-", dir=Path.home()))
    raw = raw_round_trip(frames, 5701, args.repeat)
    rows = [("raw pyzmq echo (copy=False)", statistics.median(raw), None)]
    for label, fsync, sub in [("SUBMIT+RESULT, state on disk, fsync", True, "disk-fsync"),
                              ("SUBMIT+RESULT, state on disk, no fsync", False, "disk"),
                              ("SUBMIT+RESULT, state on tmpfs", False, None)]:
        state = (base / sub) if sub else Path(tempfile.mkdtemp(prefix="ipfd-bench-", dir="/dev/shm"))
        totals, legs = server_round_trip(frames, 5702 + len(rows), args.repeat, state, fsync)
        rows.append((label, statistics.median(totals), [statistics.median(x) for x in zip(*legs)]))
    print(f"{args.frames} frames × 1920×1080 RGBA float16 = {nbytes / 1e6:.0f} MB each way; median of "
          f"{args.repeat}; {platform.processor() or platform.machine()}, {platform.python_version()}, "
          f"pyzmq {zmq.__version__}/libzmq {zmq.zmq_version()}\n")
    print("| path | round trip s | GB/s (2× bytes) | % of raw | SUBMIT→ACCEPTED / worker (echo) / RESULT s "
          "| transport only (SUBMIT+RESULT legs) % of raw |")
    print("|---|---|---|---|---|---|")
    for label, t, legs in rows:
        gbps = 2 * nbytes / t / 1e9
        detail = " / ".join(f"{x:.3f}" for x in legs) if legs else "–"
        transport = f"{100 * rows[0][1] / (legs[0] + legs[2]):.0f} %" if legs else "–"
        print(f"| {label} | {t:.3f} | {gbps:.2f} | {100 * rows[0][1] / t:.0f} % | {detail} | {transport} |")


if __name__ == "__main__":
    main()
