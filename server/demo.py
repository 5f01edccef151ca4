"""`ipfacediff demo`: the README's main job, a short real-face clip edited end to end.

In: an output folder, a prompt and a frame count. Out: `OUT/input/` (engine.demo.make_clip),
`OUT/edited/` (the result of `ipfacediff edit --engine` against a real engine process that the
demo starts with `ipfacediff serve` and stops afterwards), `OUT/stats.json` and
`OUT/contact_sheet.png` (input above, output below). Uses Stable Diffusion 2.1-base when it is
on disk; otherwise says so and runs the same pipeline with the `tiny` random-weight preset,
labelled as such. OUT is the demo's own folder, so a second run replaces these files
(`--overwrite`) and reads only the frames of this run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="edit a short real-face clip end to end (the README's main job)")
    demo.add_argument("--out", type=Path, default=Path("demo_out"),
                      help="the demo's own folder, replaced on every run (default demo_out)")
    demo.add_argument("--prompt", default="add glasses", help="the edit (default 'add glasses')")
    demo.add_argument("--frames", type=int, default=16, help="length of the clip made from the photo (default 16)")
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import cv2

    from engine.cli import main
    from engine.demo import contact_sheet, default_model_on_disk, make_clip
    from engine.io import read_frames, write_frames
    from engine.io.write import RANDOM_WEIGHTS_LABEL
    from engine.models import DEFAULT_MODEL
    from server.launch import EngineProcess

    real = default_model_on_disk()
    model = ["--model", DEFAULT_MODEL] if real else ["--preset", "tiny"]
    side = 512 if real else 64
    if not real:
        print(f"{DEFAULT_MODEL} is not on this machine, so the demo runs the same pipeline with the "
              "'tiny' preset, whose random weights make noise, not an edit.", file=sys.stderr)
    clip = make_clip(args.frames, side)
    frames = (1001, 1000 + args.frames)
    write_frames(clip, args.out / "input", start=frames[0], overwrite=True)
    engine = EngineProcess(args.out / "engine_state", model=tuple(model))
    print(f"starting the engine ({' '.join(model)}) ...", file=sys.stderr)
    engine.start(ready_timeout=600)
    try:
        status = main(["edit", str(args.out / "input"), "--frames", f"{frames[0]}-{frames[1]}", "--prompt", args.prompt,
                       "--out", str(args.out / "edited"), "--stats", str(args.out / "stats.json"), "--overwrite",
                       "--engine", engine.address])
    finally:
        engine.shutdown()
    if status != 0:
        return status
    edited = read_frames(args.out / "edited", frames).frames
    stats = json.loads((args.out / "stats.json").read_text())
    label = f" {RANDOM_WEIGHTS_LABEL}" if stats["random_weights"] else ""
    caption = f"top: input  bottom: '{args.prompt}'  model: {stats['model']}"
    passed = [frame - frames[0] for frame in (stats.get("qc") or {}).get("passed_through", [])]
    sheet = contact_sheet(clip, edited, caption, passed=passed)
    cv2.imwrite(str(args.out / "contact_sheet.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"demo done{label}: {args.out / 'edited'} and {args.out / 'contact_sheet.png'}", file=sys.stderr)
    return 0
