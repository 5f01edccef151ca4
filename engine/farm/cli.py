"""`ipfacediff farm bundle|keyframes|propagate|assemble`: a shot as an Open Job Description job.

In: argv (through engine.cli's dispatcher). Out: `bundle` writes the job bundle and refuses,
before writing anything, outputs that would clash; the step commands do one step's work and
print `openjd_progress` / `openjd_status` lines. Exit status as every ipfacediff command: 0,
2 with one sentence for bad input (a farm shows it as the task's failure reason, no retry
helps), 1 for a failure, 130 when cancelled.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.errors import UserError


def _command() -> str:
    """The ipfacediff executable running now, if it is one (so a local bundle runs this install)."""
    me = Path(sys.argv[0])
    return str(me.resolve()) if me.name == "ipfacediff" and me.exists() else "ipfacediff"


def cmd_bundle(args: argparse.Namespace) -> int:
    from engine.cli import parse_range, settings_from_args
    from engine.farm.spec import FarmSpec
    from engine.farm.template import write_bundle
    from engine.io import check_output, frame_names, probe, read_frames
    from engine.io.sequence import edited_name
    from engine.presets import preset_names
    from engine.prompts import check_prompt

    settings = settings_from_args(args)
    if args.preset is not None and args.preset not in preset_names():
        raise UserError(f"unknown preset '{args.preset}'; choose one of: {', '.join(preset_names())}.")
    info = probe(args.input)
    first, last = parse_range(args.frames) or (info.first, info.first + info.frame_count - 1)
    count = last - first + 1
    if count < 1 or first < info.first or last > info.first + info.frame_count - 1:
        raise UserError(f"--frames {first}-{last} lies outside the shot's frames {info.first}-"
                        f"{info.first + info.frame_count - 1}.")
    name = args.name or edited_name(read_frames(args.input, (first, first)).naming)
    spec = FarmSpec(prompt=check_prompt(args.prompt), settings=settings.to_dict(), first=first, count=count,
                    chunk_size=args.chunk_size, model=args.model, preset=args.preset, model_config=args.model_config,
                    identity_model=args.identity_model, direction_model=args.direction_model, format=args.format,
                    name=name, input_colorspace=args.input_colorspace, output_colorspace=args.output_colorspace)
    layout = spec.chunks  # refuses a chunk size below 1
    shot = Path(args.input).resolve()
    check_output(args.out, frame_names(count, start=first, fmt=args.format, name=name), overwrite=args.overwrite,
                 inputs=[shot if shot.exists() else shot.parent])
    job_dir = (args.job_dir or args.bundle / "job").resolve()
    files = write_bundle(args.bundle, spec, shot=shot, out=args.out.resolve(), job_dir=job_dir,
                         command=args.command or _command(), device=settings.device)
    sizes = sorted({b - a for a, b in layout})
    print(f"wrote {files['template']} ({len(layout)} chunks of {_span(sizes)} frames: "
          f"--chunk-size {spec.chunk_size} moved onto keyframe segment starts); "
          f"run it with: openjd run {files['template']} -p file://{files['openjd_run']}", file=sys.stderr)
    return 0


def _span(sizes: list[int]) -> str:
    return str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"


def _step_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", required=True, type=Path, help="the job spec the template embeds")
    parser.add_argument("--shot", required=True, help="the shot (video, image-sequence folder or pattern)")
    parser.add_argument("--out", required=True, type=Path, help="output folder of the edited frames")
    parser.add_argument("--job-dir", required=True, type=Path, help="the job's shared folder")


def _device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="auto, cpu, mps, cuda or cuda:N for this node (default: the job's "
                        "setting; CUDA_VISIBLE_DEVICES applies as usual)")


def cmd_step(args: argparse.Namespace) -> int:
    from engine.farm import steps
    from engine.farm.spec import FarmSpec, JobFolder
    from engine.farm.status import TaskStatus

    spec, job, status = FarmSpec.read(args.spec), JobFolder(args.job_dir), TaskStatus()
    device = None if args.device in (None, "auto") else args.device
    if args.step == "keyframes":
        steps.keyframes(spec, args.shot, args.out, job, device, status)
    elif args.step == "propagate":
        steps.propagate(spec, args.chunk, args.shot, args.out, job, device, status)
    else:
        steps.assemble(spec, args.shot, args.out, job, status)
    return 0


def register(sub) -> None:
    from engine.cli import add_model_args, add_settings_flags

    farm = sub.add_parser("farm", help="edit a shot on a render farm (Open Job Description job bundle)")
    steps = farm.add_subparsers(dest="farm_command", required=True)

    bundle = steps.add_parser("bundle", help="write the shot's job bundle (template.yaml, parameter_values.yaml, "
                              "asset_references.yaml)")
    bundle.add_argument("input", help="video file, image-sequence folder, or pattern like shot/frame_%%06d.exr")
    bundle.add_argument("--prompt", required=True, help="what to change, e.g. 'add glasses'")
    bundle.add_argument("--out", required=True, type=Path, help="output folder (file names: see --name)")
    bundle.add_argument("--bundle", required=True, type=Path, help="folder to write the job bundle to")
    bundle.add_argument("--job-dir", type=Path, help="shared folder every node reads and writes (default BUNDLE/job)")
    bundle.add_argument("--frames", help="inclusive frame range A-B (sequence numbers, or 0-based video frames)")
    bundle.add_argument("--chunk-size", type=int, default=48,
                        help="about this many frames per Propagate task (default 48); each boundary moves to a "
                        "keyframe segment start less than half a chunk away, where a chunk rebuilds least")
    bundle.add_argument("--format", choices=["png", "tif", "exr"], default="png",
                        help="file type of the output frames (default png), as for edit")
    bundle.add_argument("--name", help="output file names, as for edit (default: the source's with _edit; "
                        "frame_%%06d for videos)")
    bundle.add_argument("--input-colorspace", help="OpenColorIO colourspace of the input (as for edit)")
    bundle.add_argument("--output-colorspace", help="OpenColorIO colourspace of the output frames (as for edit)")
    bundle.add_argument("--command", help="the ipfacediff command on the nodes (default: this one)")
    bundle.add_argument("--overwrite", action="store_true", help="allow replacing existing frames of the "
                        "same names in --out (each task replaces only its own)")
    add_model_args(bundle)
    add_settings_flags(bundle)
    bundle.set_defaults(func=cmd_bundle)

    for name, text in (("keyframes", "step 1: invert and edit the keyframes, write the keyframe data"),
                       ("propagate", "step 2: edit one chunk of frames and write them"),
                       ("assemble", "step 3: QC, report, contact sheet, preview movie, done marker")):
        step = steps.add_parser(name, help=text)
        _step_args(step)
        if name != "assemble":
            _device(step)
        if name == "propagate":
            step.add_argument("--chunk", required=True, type=int, help="the chunk number (0-based)")
        step.set_defaults(func=cmd_step, step=name, device=None)
