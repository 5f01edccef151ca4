"""UNet evaluations per frame of the farm path against the one-machine edit, by chunk size.

In: clip lengths, chunk sizes, DDIM steps, keyframe interval / window / anchors (defaults:
the engine's). Out (stdout): one Markdown table — for each clip length and chunk size, the
one-machine edit's evaluations per frame, the farm's (the Keyframes step's shared keyframes + every Propagate task),
the overhead, and the keyframes of other chunks each chunk rebuilds on average — and the bytes the Keyframes
step stores per keyframe at SD 2.1-base scale. Counts come from the plans the steps run
(`engine.farm.split`), by the engine's own accounting: a sub-clip of n frames, k of them
keyframes, costs n·T inversion + n·B·T editing (B guidance branches) + k·A keyframe q/k
re-runs (A attention-injection steps, cached mode). `--measure` also runs the farm and the
one-machine edit on the tiny preset (10 frames) and checks the counts against the Meter's.

    python benchmarks/bench_farm.py
    python benchmarks/bench_farm.py --frames 96 300 1200 --chunks 24 48 96 192 --measure
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.farm.split import bracketing, chunks, cut_frames, needed_groups, shared_groups, sub_plan  # noqa: E402
from engine.keyframes import plan_keyframes  # noqa: E402
from engine.schedule import Schedule  # noqa: E402
from engine.settings import Settings  # noqa: E402

SD21_LATENT = (4, 64, 64)  # SD 2.1-base at 512²


def _cost(n: int, k: int, settings: Settings) -> int:
    branches = 2 if settings.guidance_scale > 1 else 1
    rerun = k * Schedule.attn_steps_of(settings) if settings.source_features == "cached" else 0
    return n * settings.steps * (1 + branches) + rerun


def counts(n_frames: int, chunk_size: int, settings: Settings) -> dict:
    plan = plan_keyframes(n_frames, settings)
    one = _cost(n_frames, len(plan.keyframes), settings)
    layout = chunks(n_frames, chunk_size, cut_frames(plan))
    shared, _ = sub_plan(plan, [], shared_groups(plan, [list(range(a, b)) for a, b in layout]))
    farm = _cost(shared.n_frames, len(shared.keyframes), settings)  # the Keyframes step
    rebuilt = []
    for start, stop in layout:
        mine = list(range(start, stop))
        sub, _ = sub_plan(plan, mine, needed_groups(plan, bracketing(plan, mine)))
        farm += _cost(sub.n_frames, len(sub.keyframes), settings)
        rebuilt.append(len(sub.keyframes) - len([f for f in plan.keyframes if start <= f < stop]))
    sizes = sorted({b - a for a, b in layout})
    return {"frames": n_frames, "chunk": chunk_size, "chunk_frames": sizes, "chunks": len(layout),
            "keyframes": len(plan.keyframes), "shared_keyframes": len(shared.keyframes),
            "one_machine": one / n_frames, "farm": farm / n_frames, "overhead": farm / one - 1,
            "rebuilt_per_chunk": sum(rebuilt) / len(rebuilt)}


def keyframe_bytes(latent: tuple[int, int, int]) -> int:
    """keyframes.safetensors per keyframe: its source and its edited latent, fp32."""
    c, h, w = latent
    return 2 * c * h * w * 4


def measure() -> dict:
    """Run the farm (2 chunks) and the one-machine edit on tiny; return both Meter totals."""
    from engine.editor import Editor
    from engine.farm import steps
    from engine.farm.spec import FarmSpec, JobFolder
    from engine.farm.status import TaskStatus

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "farm"))
    from conftest import COUNT, FIRST, PROMPT, SETTINGS, write_shot  # the tests' shot and settings

    editor = Editor("tiny")
    with tempfile.TemporaryDirectory() as tmp:
        shot = write_shot(Path(tmp) / "shot")
        spec = FarmSpec(prompt=PROMPT, settings=SETTINGS.to_dict(), first=FIRST, count=COUNT, chunk_size=6,
                        preset="tiny")
        job, quiet = JobFolder(Path(tmp) / "job"), TaskStatus(io.StringIO())
        total = steps.keyframes(spec, str(shot), Path(tmp) / "out", job, None, quiet, editor=editor)["unet_evals"]["total"]
        for c in range(len(spec.chunks)):
            total += steps.propagate(spec, c, str(shot), Path(tmp) / "out", job, None, quiet,
                                     editor=editor)["unet_evals"]["total"]
        from engine.io import read_frames

        one = editor.edit(read_frames(shot).frames, PROMPT, SETTINGS).stats["unet_evals"]["total"]
    expected = counts(COUNT, 6, SETTINGS)
    return {"farm": total, "one_machine": one, "counted_farm": round(expected["farm"] * COUNT),
            "counted_one_machine": round(expected["one_machine"] * COUNT)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[96, 300, 1200])
    parser.add_argument("--chunks", type=int, nargs="+", default=[24, 48, 96, 192])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--keyframe-interval", type=int, default=Settings().keyframe_interval)
    parser.add_argument("--keyframe-window", type=int, default=Settings().keyframe_window)
    parser.add_argument("--keyframe-anchors", type=int, default=Settings().keyframe_anchors)
    parser.add_argument("--measure", action="store_true", help="also check the counts on the tiny preset")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    settings = Settings(steps=args.steps, keyframe_interval=args.keyframe_interval,
                        keyframe_window=args.keyframe_window, keyframe_anchors=args.keyframe_anchors)
    rows = [counts(n, c, settings) for n in args.frames for c in args.chunks]
    print(f"T={args.steps}, keyframe interval {args.keyframe_interval}, window {args.keyframe_window}, "
          f"anchors {args.keyframe_anchors}, guidance on, cached features\n")
    print("| frames | --chunk-size | chunks (frames) | keyframes | shared | one machine /frame | farm /frame "
          "| overhead | other chunks' keyframes rebuilt per chunk |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        span = "-".join(str(n) for n in (r["chunk_frames"][0], r["chunk_frames"][-1]))
        print(f"| {r['frames']} | {r['chunk']} | {r['chunks']} ({span}) | {r['keyframes']} | {r['shared_keyframes']} | "
              f"{r['one_machine']:.1f} | {r['farm']:.1f} | {100 * r['overhead']:.1f} % | {r['rebuilt_per_chunk']:.1f} |")
    print(f"\nKeyframes step data at SD 2.1-base scale: {keyframe_bytes(SD21_LATENT) / 2 ** 10:.0f} KiB per keyframe")
    out = {"rows": rows, "keyframe_bytes_sd21": keyframe_bytes(SD21_LATENT)}
    if args.measure:
        out["measured"] = measure()
        print(f"measured on tiny: {out['measured']}")
        assert out["measured"]["farm"] == out["measured"]["counted_farm"]
        assert out["measured"]["one_machine"] == out["measured"]["counted_one_machine"]
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
