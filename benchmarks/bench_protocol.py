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

from engine.presets import tiny_tokenizer
from server import protocol as P
from server.client import Client
from server.service import Options, Service
from server.worker import with_alpha


class EchoEditor:
    models = SimpleNamespace(identity_string="echo", random_weights=False, device="cpu", dtype="float32",
                             tokenizer=tiny_tokenizer())  # the server reports where a long prompt is cut

    def edit(self, frames, prompt, settings=None, **hooks):
        return SimpleNamespace(frames=list(frames), stats={}, qc=None, inversion=None)


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


def interleave_seconds(frames: list[np.ndarray], repeat: int) -> tuple[float, float]:
    """Best seconds to re-attach alpha to contiguous RGB results (as a real edit returns them):
    numpy's strided channel copy vs the worker's `with_alpha` (OpenCV RGB→RGBA)."""
    rgb = [np.ascontiguousarray(f[..., :3]) for f in frames]
    out = np.empty((len(frames), *frames[0].shape), frames[0].dtype)

    def numpy_copy():
        for i, (c, f) in enumerate(zip(rgb, frames)):
            out[i, :, :, :3] = c
            out[i, :, :, 3] = f[..., 3]

    def opencv():
        for i, (c, f) in enumerate(zip(rgb, frames)):
            with_alpha(c, f[..., 3], out[i])

    best = []
    for fn in (numpy_copy, opencv):
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        best.append(min(times))
    assert all(np.array_equal(o.view(np.uint16), f.view(np.uint16)) for o, f in zip(out, frames))
    return best[0], best[1]


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
    rows = [("raw pyzmq echo (copy=False)", raw, None)]
    for label, fsync, sub in [("SUBMIT+RESULT, state on disk, fsync", True, "disk-fsync"),
                              ("SUBMIT+RESULT, state on disk, no fsync", False, "disk"),
                              ("SUBMIT+RESULT, state on tmpfs", False, None)]:
        state = (base / sub) if sub else Path(tempfile.mkdtemp(prefix="ipfd-bench-", dir="/dev/shm"))
        totals, legs = server_round_trip(frames, 5702 + len(rows), args.repeat, state, fsync)
        rows.append((label, totals, legs))
    print(f"{args.frames} frames × 1920×1080 RGBA float16 = {nbytes / 1e6:.0f} MB each way; {args.repeat} round "
          f"trips per row, median and best; {platform.processor() or platform.machine()}, "
          f"{platform.python_version()}, pyzmq {zmq.__version__}/libzmq {zmq.zmq_version()}\n")
    print("| path | round trip s (median / best) | GB/s (2× bytes, median) | % of raw (median / best) "
          "| SUBMIT→ACCEPTED / worker (echo) / RESULT s (medians) "
          "| transport only (SUBMIT+RESULT legs) % of raw (median / best) |")
    print("|---|---|---|---|---|---|")
    raw_med, raw_best = statistics.median(raw), min(raw)
    for label, times, legs in rows:
        med, best = statistics.median(times), min(times)
        detail = transport = "–"
        if legs:
            detail = " / ".join(f"{statistics.median(x):.3f}" for x in zip(*legs))
            wire = [a + c for a, _, c in legs]
            transport = f"{100 * raw_med / statistics.median(wire):.0f} % / {100 * raw_best / min(wire):.0f} %"
        print(f"| {label} | {med:.3f} / {best:.3f} | {2 * nbytes / med / 1e9:.2f} | {100 * raw_med / med:.0f} % / "
              f"{100 * raw_best / best:.0f} % | {detail} | {transport} |")
    slow, fast = interleave_seconds(frames, args.repeat)
    print(f"\nre-attaching alpha to {args.frames} contiguous RGB results (best of {args.repeat}): numpy strided copy "
          f"{1000 * slow:.0f} ms, OpenCV RGB→RGBA (server.worker.with_alpha) {1000 * fast:.0f} ms ({slow / fast:.1f}×)")


if __name__ == "__main__":
    main()
