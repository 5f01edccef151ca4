"""The README's main job: edit a short real-face clip end to end.

In: an output folder, a prompt and a frame count. Out: `OUT/input/` (a clip made from the
astronaut photo that ships with scikit-image, with a slow synthetic head move), `OUT/edited/`
(the result of `ipfacediff edit --engine` against a real engine process that the demo starts
with `ipfacediff serve` and stops afterwards), `OUT/stats.json`
and `OUT/contact_sheet.png` (input above, output below). Uses Stable Diffusion 2.1-base when
it is on disk; otherwise says so and runs the same pipeline with the `tiny` random-weight
preset, labelled as such. OUT is the demo's own folder, so a second run replaces these files
(`--overwrite`) and reads only the frames of this run.
"""

from __future__ import annotations

import argparse
import json
import sys

import cv2
import numpy as np

from engine.models import DEFAULT_MODEL

FACE_CENTRE, FACE_SIDE = (225.0, 112.0), 200.0  # the astronaut's face in skimage's 512² photo


def make_clip(n_frames: int, side: int) -> list[np.ndarray]:
    """n frames of the astronaut's face: slow pan, zoom and tilt, as a handheld shot."""
    from skimage import data

    photo = data.astronaut()
    frames = []
    for i in range(n_frames):
        phase = i / max(n_frames - 1, 1)
        cx, cy = FACE_CENTRE[0] + 12 * np.sin(2 * np.pi * phase), FACE_CENTRE[1] + 6 * phase
        scale = side / (FACE_SIDE * (1.0 + 0.08 * phase))
        m = cv2.getRotationMatrix2D((cx, cy), 4 * np.sin(2 * np.pi * phase), scale)
        m[:, 2] += (side / 2 - cx, side / 2 - cy)
        frames.append(cv2.warpAffine(photo, m, (side, side), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT))
    return frames


def default_model_on_disk() -> bool:
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(DEFAULT_MODEL, local_files_only=True)
        return True
    except Exception:  # not in the local cache (any hub error means: not usable offline)
        return False


def contact_sheet(before: list[np.ndarray], after: list[np.ndarray], label: str, columns: int = 8,
                  tile: int = 160) -> np.ndarray:
    """Input row above output row, `tile` pixels a frame, with a caption bar."""
    pick = np.linspace(0, len(before) - 1, min(columns, len(before))).round().astype(int)

    def row(frames: list[np.ndarray]) -> np.ndarray:
        return np.hstack([cv2.resize(frames[i], (tile, tile), interpolation=cv2.INTER_AREA) for i in pick])

    grid = np.vstack([row(before), row(after)])
    caption = np.full((28, grid.shape[1], 3), 255, np.uint8)
    cv2.putText(caption, label, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (200, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([caption, grid])


def run(args: argparse.Namespace) -> int:
    from engine.cli import main
    from engine.io import read_frames, write_frames
    from engine.io.write import RANDOM_WEIGHTS_LABEL
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
    sheet = contact_sheet(clip, edited, caption)
    cv2.imwrite(str(args.out / "contact_sheet.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"demo done{label}: {args.out / 'edited'} and {args.out / 'contact_sheet.png'}", file=sys.stderr)
    return 0
