"""Long clips on tiny (CPU): peak memory and cache per frame against clip length, and the
cache layout at SD 2.1-base scale computed from the shapes.

In: frame counts (`--frames 64,256,1024`), a small side and few steps. Out (stdout, and
`--json OUT`): one row per length, each edited in a fresh process so its peak RSS is its own —
seconds, UNet evaluations per frame (measured, and computed for 50 steps), peak host RSS, cache
bytes per frame and the peak outside the cache (peak RSS − cache: the cache lives in host
memory on the CPU); then the SD 2.1-base layout (512², bf16, 50 steps, defaults) by item at
300 and 1,200 frames, from `engine.invert.cache_layout` — the same function the tests check
against the measured tiny store to the byte.

    python benchmarks/bench_long.py --frames 64,256,1024 --size 64 --steps 4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_edit import PROMPT, machine, make_clip, mib  # noqa: E402
from engine.settings import Settings  # noqa: E402

SD_STEPS, SD_SIDE, SD_FEATURE_BYTES = 50, 512, 2  # bf16


def one(n: int, size: int, steps: int, threads: int | None) -> dict:
    """Edit an n-frame clip in this process; its figures."""
    import torch

    from engine.editor import Editor
    from engine.schedule import Schedule

    if threads:
        torch.set_num_threads(threads)
    editor = Editor("tiny", device="cpu")
    settings = Settings(steps=steps)
    start = time.perf_counter()
    stats = editor.edit_crops(make_clip(n, size), PROMPT, settings).stats
    k = len(stats["keyframes"])
    peak = stats["peak_memory_bytes"]["host_rss"]
    cache = stats["cache_bytes_per_frame"] * n
    at50 = Settings()
    return {"frames": n, "keyframes": k, "seconds": round(time.perf_counter() - start, 2),
            "evals_per_frame": stats["unet_evals"]["per_frame"],
            "evals_per_frame_at_50": 3 * at50.steps + k * Schedule.attn_steps_of(at50) / n,
            "peak_rss": peak, "cache_bytes_per_frame": stats["cache_bytes_per_frame"],
            "peak_outside_cache": peak - cache}


def sd21_layout(n: int) -> dict:
    from engine.invert import cache_layout
    from engine.keyframes import plan_keyframes
    from engine.presets import PRESETS
    from engine.schedule import Schedule

    s = Settings(steps=SD_STEPS)
    k = len(plan_keyframes(n, s).keyframes)
    latent = (4, SD_SIDE // 8, SD_SIDE // 8)
    steps = (SD_STEPS, Schedule.attn_steps_of(s), round(s.conv_injection * SD_STEPS))
    items = cache_layout(PRESETS["sd21-base"].unet, latent, n, k, steps, SD_FEATURE_BYTES)
    return {"frames": n, "keyframes": k, "bytes_per_frame": {name: b / n for name, b in items.items()},
            "total_per_frame": sum(items.values()) / n, "total": sum(items.values()),
            "evals_per_frame": 3 * SD_STEPS + k * steps[1] / n}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", default="64,256,1024", help="clip lengths, comma list")
    p.add_argument("--size", type=int, default=64, help="square side (default 64, tiny's native)")
    p.add_argument("--steps", type=int, default=4, help="DDIM steps (default 4)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per run")
    p.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # child: one length, JSON out
    p.add_argument("--json", default=None, metavar="OUT")
    args = p.parse_args(argv)
    if args.one is not None:
        print(json.dumps(one(args.one, args.size, args.steps, args.threads)))
        return 0

    print(f"machine: {machine()}", flush=True)
    rows = []
    for n in (int(v) for v in args.frames.split(",")):
        cmd = [sys.executable, __file__, "--one", str(n), "--size", str(args.size), "--steps", str(args.steps)]
        cmd += ["--threads", str(args.threads)] if args.threads else []
        row = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        rows.append(row)
        print(f"{n:>5} frames ({row['keyframes']} keyframes): {row['seconds']:.1f} s, "
              f"{row['evals_per_frame']:.2f} evals/frame ({row['evals_per_frame_at_50']:.2f} at 50 steps), "
              f"peak RSS {mib(row['peak_rss'])}, cache/frame {mib(row['cache_bytes_per_frame'])}, "
              f"peak outside the cache {mib(row['peak_outside_cache'])}", flush=True)
    flat = rows[-1]["peak_outside_cache"] / rows[0]["peak_outside_cache"]
    print(f"peak outside the cache, {rows[-1]['frames']} vs {rows[0]['frames']} frames: {flat:.2f}× (goal ≤ 1.2×)")

    layouts = [sd21_layout(n) for n in (300, 1200)]
    print(f"\nSD 2.1-base cache layout ({SD_SIDE}², bf16, {SD_STEPS} steps, defaults), per frame:")
    for lay in layouts:
        parts = ", ".join(f"{name} {mib(b)}" for name, b in lay["bytes_per_frame"].items())
        print(f"{lay['frames']:>5} frames ({lay['keyframes']} keyframes): {parts}; total {mib(lay['total_per_frame'])}"
              f" ({mib(lay['total'])} in all); {lay['evals_per_frame']:.2f} UNet evals/frame")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "date": time.strftime("%Y-%m-%d"),
                                               "args": vars(args), "rows": rows, "sd21_base_layout": layouts,
                                               "peak_outside_cache_ratio": flat}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
