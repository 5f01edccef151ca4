"""The `ipfacediff` command line.

In: argv. Out: an exit status — 0 on success; 2 with one sentence on stderr for bad input
(never a traceback); 3 when `edit` found no face in any frame (the frames are written
unchanged and stderr says so); 130 when cancelled. Edit settings flags are generated from
`engine.settings.Settings`, so the CLI never re-declares a setting or its default.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

from engine.dataclass_cli import add_dataclass_flags, dataclass_values
from engine.errors import Cancelled, UserError
from engine.progress import StageProgress
from engine.settings import Settings

# The other parts add their own subcommands through a `register(subparsers)` that each names in
# pyproject.toml, [project.entry-points."ipfacediff.commands"] (faces, training, farm, the engine
# server, the plugins), so this file stays the dispatcher and the engine imports none of them.
COMMANDS = "ipfacediff.commands"
# `edit --engine ADDR` runs through the function the protocol's package names there under
# [project.entry-points."ipfacediff.remote"] as `edit`.
REMOTE = "ipfacediff.remote"

NO_FACE_STATUS = 3  # no frame had a face: the frames were written unchanged

# Short flag names the issue tracker and users know, besides the generated ones.
ALIASES = {"guidance_scale": ["--guidance"], "face_mode": ["--mode"]}


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per Settings field (`--keyframe-interval`, ...), help text from its docstring;
    unset flags keep the dataclass default."""
    group = parser.add_argument_group("edit settings (defaults from engine.settings.Settings)")
    add_dataclass_flags(group, Settings, aliases=ALIASES)


def settings_from_args(args: argparse.Namespace) -> Settings:
    return Settings(**dataclass_values(Settings, args))


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """The model flags shared by every command that loads models (`edit`, `serve`)."""
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--preset", help="random-weight architecture preset: tiny, tiny-v, sd21-base")
    model.add_argument("--model", help="hub id, diffusers folder or .safetensors/.ckpt file")
    parser.add_argument("--model-config", help="diffusers config (hub id or folder) for a single checkpoint file")
    parser.add_argument("--identity-model", help="ε1: LoRA adapter (folder or file) or UNet folder")
    parser.add_argument("--direction-model", help="ε2: LoRA adapter (folder or file) or UNet folder")


def parse_range(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    parts = text.split("-")
    try:
        if len(parts) == 1:
            return int(parts[0]), int(parts[0])
        if len(parts) == 2:
            return int(parts[0]), int(parts[1])
    except ValueError:
        pass
    raise UserError(f"--frames must look like A-B (e.g. 1001-1048); got '{text}'.")


class Parser(argparse.ArgumentParser):
    """argparse, but a mistake on the command line is one line and where to read more, not the usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message}\nsee `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="ipfacediff", description="Edit faces in video from a text prompt.")
    sub = parser.add_subparsers(dest="command", required=True)

    edit = sub.add_parser("edit", help="edit a clip (video file or image sequence)")
    edit.add_argument("input", help="video file, image-sequence folder, or pattern like shot/frame_%%06d.exr")
    edit.add_argument("--prompt", required=True, help="what to change, e.g. 'add glasses'")
    edit.add_argument("--frames", help="inclusive frame range A-B (sequence numbers, or 0-based video frames)")
    edit.add_argument("--out", required=True, type=Path, help="output folder (file names: see --name)")
    add_model_args(edit)
    edit.add_argument("--format", choices=["png", "tif", "exr"], default="png",
                      help="file type of the output frames (default png); the sample type follows the source")
    edit.add_argument("--input-colorspace", help="OpenColorIO colourspace of the input ($OCIO config, else the "
                      "built-in ACES studio config; default: sRGB for 8/16-bit integer images, scene-linear "
                      "Rec.709 for EXR and other float images)")
    edit.add_argument("--output-colorspace", help="OpenColorIO colourspace of the output frames (default as for "
                      "the input, by the written sample type)")
    edit.add_argument("--name", help="output file names: a pattern with one frame-number field, e.g. shot_v2.%%04d "
                      "(default: the source's with _edit, shot.1001.exr -> shot_edit.1001.exr; frame_%%06d for videos)")
    edit.add_argument("--video", type=Path, help="also write an 8-bit H.264 preview here (.mp4, .mov or .mkv)")
    edit.add_argument("--overwrite", action="store_true", help="replace existing output files of the same "
                      "name (frames, --video, --stats, --report); other files are never touched")
    edit.add_argument("--stats", type=Path, help="write the edit's stats (and QC) as JSON here")
    edit.add_argument("--report", type=Path, help="write the QC report here (.png or .html): keyframes "
                      "before/after and identity distance over time")
    edit.add_argument("--quiet", action="store_true", help="no progress (on a terminal one bar per stage; "
                      "elsewhere a line every few seconds)")
    edit.add_argument("--engine", metavar="ADDR", help="run the edit through a running engine (ipfacediff serve); "
                      "the model is the engine's")
    edit.add_argument("--engine-keys", type=Path, help="keys folder for a CURVE engine")
    add_settings_flags(edit)
    edit.set_defaults(func=cmd_edit)
    for point in sorted(entry_points(group=COMMANDS), key=lambda p: p.name):
        try:
            register = point.load()
        except ModuleNotFoundError as exc:
            if exc.name is not None and point.module.startswith(exc.name):
                continue  # that part of the product is not installed / not built yet
            raise
        register(sub)
    return parser


def remote_edit():
    """The function that runs `edit --engine` (see REMOTE)."""
    found = [p for p in entry_points(group=REMOTE) if p.name == "edit"]
    if not found:
        raise UserError("--engine needs the engine client, which this installation lacks; reinstall ipfacediff.")
    return found[0].load()


class Log:
    """stderr logger; a random-weight run says so on every line."""

    def __init__(self, random_weights: bool = False):
        from engine.io.write import RANDOM_WEIGHTS_LABEL

        self.prefix = f"{RANDOM_WEIGHTS_LABEL} " if random_weights else ""

    def __call__(self, message: str) -> None:
        print(f"{self.prefix}{message}", file=sys.stderr, flush=True)


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def check_edit_outputs(args: argparse.Namespace, clip) -> None:
    """Refuse, before any model loads, outputs of `edit` that would clash (without --overwrite),
    write over the input, or cannot be written: the frames, --video, --stats and --report."""
    from engine.io import check_output, frame_names
    from engine.metrics.report import check_report_path

    if args.report is not None:
        check_report_path(args.report)
    given = Path(args.input)
    names = frame_names(len(clip.frames), start=clip.first, fmt=args.format, name=args.name)
    check_output(args.out, names, video=args.video,
                 files=[p for p in (args.stats, args.report) if p is not None], overwrite=args.overwrite,
                 inputs=[given if given.exists() else given.parent])


def cmd_edit(args: argparse.Namespace) -> int:
    if args.engine:
        return remote_edit()(args)
    from engine.editor import Editor
    from engine.io import read_frames
    from engine.io.colour import ModelFrames
    from engine.io.sequence import edited_name
    from engine.models import DEFAULT_MODEL
    from engine.presets import preset_names
    from engine.prompts import check_prompt, prompt_warnings

    settings = settings_from_args(args)
    if args.preset is not None and args.preset not in preset_names():
        raise UserError(f"unknown preset '{args.preset}'; choose one of: {', '.join(preset_names())}.")
    prompt = check_prompt(args.prompt)
    clip = read_frames(args.input, parse_range(args.frames))
    args.name = args.name or edited_name(clip.naming)
    working = ModelFrames.prepare(clip, args.input_colorspace, args.output_colorspace, args.format)
    check_edit_outputs(args, clip)
    editor = Editor(args.preset or args.model or DEFAULT_MODEL,
                    identity=args.identity_model, direction=args.direction_model,
                    device=settings.device, dtype=settings.dtype, model_config=args.model_config)
    log = Log(editor.models.random_weights)
    log(f"model {editor.models.identity_string} on {editor.models.device}")
    if editor.models.random_weights:
        log("this model has random weights: the output is noise, not an edit.")
    for warning in prompt_warnings(editor.models.tokenizer, prompt, settings):
        log(f"warning: {warning}")
    progress = None if args.quiet else StageProgress(prefix=log.prefix)
    try:
        result = editor.edit(working.frames, prompt, settings, progress=progress)
    finally:
        if progress is not None:
            progress.close()
    return write_outputs(args, clip, working, result.frames, result.stats, result.qc,
                         editor.models.random_weights, log)


def write_outputs(args: argparse.Namespace, clip, working, edited: list, stats: dict, qc: dict | None,
                  random_weights: bool, log: Log, via: str = "") -> int:
    """What `edit` writes and says once the edit is done, in-process or through an engine
    (`via`): the frames (and --video), the random-weights label, --stats, the QC line,
    drifted frames and --report, numbered as the source numbers its files."""
    from engine.io import mark_random_weights, write_frames
    from engine.metrics.quality import numbered
    from engine.metrics.report import render_report, summary

    qc = numbered(qc, clip.first)
    paths = write_frames(working.restore(edited), args.out, start=clip.first, fmt=args.format, video=args.video,
                         fps=clip.fps or 24.0, overwrite=args.overwrite, name=args.name, preview=edited)
    mark_random_weights(args.out, random_weights)
    if args.stats:
        atomic_write_text(args.stats, json.dumps({**stats, "qc": qc}, indent=2, default=str))
    if qc is not None:
        log("QC: " + summary(qc))
        if qc["drifted_frames"]:
            log(f"identity drifted in frames: {', '.join(map(str, qc['drifted_frames']))}")
        if args.report:
            render_report(working.frames, edited, qc, args.report, random_weights=random_weights)
            log(f"wrote the QC report to {args.report}")
    evals = stats["unet_evals"]["per_frame"]
    log(f"wrote {len(paths)} frames to {args.out}{via} ({evals:.0f} UNet evaluations per frame, "
        f"{stats['seconds']['total']:.1f} s)")
    if stats.get("no_face"):  # the shot is in --out, unedited: say so and exit 3, never a silent pass
        log(f"warning: {stats['warnings'][-1]}")
        return NO_FACE_STATUS
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no torchvision notices on the console
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"ipfacediff: {exc}", file=sys.stderr)
        return 2
    except (Cancelled, KeyboardInterrupt):
        print("ipfacediff: cancelled; nothing was written.", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: still one line unless debugging
        if os.environ.get("IPFACEDIFF_DEBUG"):
            raise
        print(f"ipfacediff: internal error ({type(exc).__name__}: {exc}); "
              "set IPFACEDIFF_DEBUG=1 for the traceback.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
