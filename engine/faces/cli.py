"""`ipfacediff qc` and `ipfacediff eval` (registered by engine/cli.py through `register`).

qc ORIGINAL EDITED [--json [FILE]] [--report FILE.png|FILE.html] [--fail-on-drift]:
   find the face(s) in the original clip as an edit would, then print per-frame identity
   distance, warp error, crop boxes and drifted frames (a table, or JSON).
eval --original DIR --edited [NAME=]DIR ... [--gallery DIR] [--embedders facenet,dlib]:
   the paper's protocol over folders of clips; prints rows shaped like Tables 1 and 3.
Face and QC settings (`--face-*`, `--qc-*`, `--resolution`) come from `Settings`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from engine.errors import UserError

FACE_PREFIXES = ("face_", "qc_")
PASTE_BACK = ("face_mask", "face_mask_dilate", "face_feather", "face_paste", "face_color_match")  # edit only


def add_face_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per face/QC field of Settings that finding and measuring faces read (not the
    paste-back ones), generated like the edit flags."""
    from engine.dataclass_cli import add_dataclass_flags
    from engine.settings import Settings

    group = parser.add_argument_group("face and QC settings (defaults from engine.settings.Settings)")
    names = [f.name for f in dataclasses.fields(Settings)
             if (f.name.startswith(FACE_PREFIXES) or f.name == "resolution") and f.name not in PASTE_BACK]
    add_dataclass_flags(group, Settings, names=names)


def _settings(args: argparse.Namespace):
    from engine.dataclass_cli import dataclass_values
    from engine.settings import Settings

    return Settings(**dataclass_values(Settings, args))


def register(sub) -> None:
    qc = sub.add_parser("qc", help="identity and flicker QC of an edited clip against its original")
    qc.add_argument("original", help="original clip (video, image-sequence folder or pattern)")
    qc.add_argument("edited", help="edited clip, same frame count")
    qc.add_argument("--frames", help="inclusive frame range A-B of both clips")
    qc.add_argument("--json", nargs="?", const="-", metavar="FILE", help="print (or write to FILE) the QC as JSON")
    qc.add_argument("--report", type=Path, metavar="FILE", help="write a contact sheet + plot (.png or .html)")
    qc.add_argument("--fail-on-drift", action="store_true", help="exit with status 3 when a frame drifted")
    qc.add_argument("--input-colorspace", help="OpenColorIO colourspace of both clips (default: sRGB for 8/16-bit "
                    "integer images, scene-linear Rec.709 for EXR); faces are measured in the model's sRGB")
    add_face_flags(qc)
    qc.set_defaults(func=cmd_qc)

    ev = sub.add_parser("eval", help="the paper's identity (Table 1) and temporal (Table 3) metrics over folders")
    ev.add_argument("--original", required=True, type=Path, help="folder of original clips")
    ev.add_argument("--edited", required=True, action="append", metavar="[NAME=]DIR",
                    help="folder of edited clips named like the originals; repeat for several methods")
    ev.add_argument("--gallery", type=Path, help="folder of further original clips (retrieval distractors)")
    ev.add_argument("--embedders", default="facenet", help="comma-separated: facenet, dlib, arcface (default facenet)")
    ev.add_argument("--every", type=int, default=1, help="embed every N-th frame (default 1: all)")
    ev.add_argument("--json", nargs="?", const="-", metavar="FILE", help="print (or write to FILE) the results as JSON")
    add_face_flags(ev)
    ev.set_defaults(func=cmd_eval)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _emit_json(target: str, data: dict) -> None:
    text = json.dumps(data, indent=2)
    if target == "-":
        print(text)
    else:
        from engine.cli import atomic_write_text

        atomic_write_text(Path(target), text + "\n")


def cmd_qc(args: argparse.Namespace) -> int:
    from engine.cli import parse_range
    from engine.faces.plan import prepare
    from engine.io import read_frames
    from engine.io.colour import ModelFrames
    from engine.io.write import RANDOM_WEIGHTS_MARKER
    from engine.metrics.quality import qc
    from engine.metrics.report import render_report

    settings = _settings(args)
    if settings.face_mode == "auto":
        settings = settings.replace(face_mode="crop")
    rng = parse_range(args.frames)
    source = read_frames(args.original, rng)
    original = ModelFrames.prepare(source, args.input_colorspace).frames
    edited = ModelFrames.prepare(read_frames(args.edited, rng), args.input_colorspace).frames
    if len(original) != len(edited):
        raise UserError(f"the clips differ in length ({len(original)} original, {len(edited)} edited frames).")
    if original[0].shape[:2] != edited[0].shape[:2]:
        raise UserError(f"the clips differ in frame size ({original[0].shape[1]}×{original[0].shape[0]} vs "
                        f"{edited[0].shape[1]}×{edited[0].shape[0]}).")
    plan = prepare(original, settings)
    if not plan.crops:
        _log("no face found in the original clip: identity is not measured.")
    result = qc(original, edited, plan, settings=settings, first=source.first)
    result["plan"] = {k: v for k, v in plan.summary().items() if k in ("detector", "tracks", "subjects", "status_counts")}
    if args.json:
        _emit_json(args.json, result)
    if not args.json or args.json != "-":
        print(format_qc(result))
    if args.report:
        folder = Path(args.edited) if Path(args.edited).is_dir() else Path(args.edited).parent
        render_report(original, edited, result, args.report,
                      random_weights=(folder / RANDOM_WEIGHTS_MARKER).is_file())  # an edit's own label
        _log(f"wrote {args.report}")
    return 3 if args.fail_on_drift and result["drifted_frames"] else 0


def format_qc(q: dict) -> str:
    """The QC record as a table, one row per frame, numbered as the source numbers its files."""
    from engine.metrics.report import _box_for, passed, spans, summary

    lines = [summary(q), f"{'frame':>5}  {'status':<9} {'identity':>8}  {'warp(orig)':>10} {'warp(edit)':>10}  "
                         "face  crop (cx, cy, side)"]
    w, first = q["warp_error"], q.get("first_frame", 0)
    drifted, skipped = set(q["drifted_frames"]), passed(q)
    for i, status in enumerate(q["status"]):
        d = q["identity_distance"][i]
        b = _box_for(q, i)
        crop = f"{b['subject']:>4}  {b['cx']:.1f}, {b['cy']:.1f}, {b['side']:.1f}" if b else "   -  -"
        flag = "  DRIFT" if i + first in drifted else "  passed through" if i in skipped else ""
        lines.append(f"{i + first:>5}  {status:<9} {_f(d):>8}  {_f(w['original'][i]):>10} {_f(w['edited'][i]):>10}  "
                     f"{crop}{flag}")
    if drifted:
        lines.append(f"drifted frames: {spans(sorted(drifted))}")
    return "\n".join(lines)


def _f(x) -> str:
    return "-" if x is None else f"{x:.4f}"


def cmd_eval(args: argparse.Namespace) -> int:
    from engine.metrics.evaluate import evaluate, format_tables

    settings = _settings(args)
    edited = {}
    for item in args.edited:
        name, _, folder = item.rpartition("=")
        folder_path = Path(folder)
        edited[name or folder_path.name] = folder_path
    embedders = [e.strip() for e in args.embedders.split(",") if e.strip()]
    result = evaluate(args.original, edited, args.gallery, embedders, settings, every=args.every, log=_log)
    if args.json:
        _emit_json(args.json, result)
    if not args.json or args.json != "-":
        print(format_tables(result))
    return 0
