"""Subcommands `install-resolve` and `resolve-edit`, registered into the `ipfacediff` CLI.

In: argparse subparsers (from engine.cli). Out: `install-resolve [--user|--system] [--dest DIR]
[--engine ADDR]` writes the menu script and prints its path; `resolve-edit --prompt ...`
edits the marked range of the running Resolve Studio from outside it (scriptapp), with
console progress and Ctrl+C to cancel; settings flags come from engine.settings.Settings.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.errors import UserError
from plugin_resolve.errors import DEFAULT_ENGINE


def register(sub: argparse._SubParsersAction) -> None:
    inst = sub.add_parser("install-resolve", help="copy the DaVinci Resolve script into Workspace > Scripts > Utility")
    scope = inst.add_mutually_exclusive_group()
    scope.add_argument("--user", dest="system", action="store_false", help="this user's Scripts folder (default)")
    scope.add_argument("--system", dest="system", action="store_true", help="the all-users Scripts folder")
    inst.add_argument("--dest", type=Path, help="use this Scripts/Utility folder instead")
    inst.add_argument("--engine", default=DEFAULT_ENGINE, help=f"engine address the window starts with "
                      f"(default {DEFAULT_ENGINE})")
    inst.set_defaults(func=cmd_install, system=False)

    edit = sub.add_parser("resolve-edit", help="edit the marked range of the running Resolve Studio (from outside it)")
    edit.add_argument("--prompt", required=True, help="what to change, e.g. 'add glasses'")
    edit.add_argument("--engine", default=DEFAULT_ENGINE, help=f"engine address (default {DEFAULT_ENGINE})")
    edit.add_argument("--engine-keys", help="keys folder for a CURVE engine")
    edit.add_argument("--track", type=int, help="video track of the shot (default: topmost clip in the range)")
    edit.add_argument("--source", choices=["render", "source"], default="render",
                      help="render the range from the Deliver page (default) or let the engine read the clip's media")
    edit.add_argument("--format", dest="image_format", choices=["tif", "exr"], default="tif",
                      help="file type of the rendered range and the edited frames (default tif)")
    edit.add_argument("--work-dir", help="folder for renders and results (the engine's --media-root)")
    from engine.cli import add_settings_flags

    add_settings_flags(edit)
    edit.set_defaults(func=cmd_edit)


def cmd_install(args: argparse.Namespace) -> int:
    from plugin_resolve.install import install, scripts_dir

    folder = args.dest or scripts_dir(args.system)
    try:
        path = install(args.system, args.dest, args.engine)
    except PermissionError:
        raise UserError(f"cannot write to {folder}; run as an administrator (sudo) for --system, or use --user.")
    print(path)
    print(f"Restart Resolve (or reopen Workspace > Scripts) and pick Utility > ipfacediff. Start the engine with "
          f"its media root, e.g. ipfacediff serve --media-root ~/ipfacediff-resolve. Resolve's own Python needs "
          f"pyzmq and msgpack (Python {sys.version_info[0]}.{sys.version_info[1]} can use this environment's).",
          file=sys.stderr)
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    from engine.settings import documented_fields
    from plugin_resolve import connect
    from plugin_resolve.errors import Cancelled, ResolveEditError
    from plugin_resolve.flow import EditRun
    from plugin_resolve.progress import ConsoleProgress

    names = {name for name, _, _ in documented_fields()}
    settings = {k: v for k, v in vars(args).items() if k in names}
    try:
        run = EditRun(connect.scriptapp(), args.prompt, engine=args.engine, keys=args.engine_keys, track=args.track,
                      source=args.source, image_format=args.image_format, work_dir=args.work_dir,
                      progress=ConsoleProgress(sys.stderr), settings=settings)
        item = run.prepare().commit()
    except Cancelled as exc:
        print(f"ipfacediff: {exc}", file=sys.stderr)
        return 130
    except ResolveEditError as exc:
        raise UserError(str(exc)) from None
    for warning in run.warnings:
        print(f"ipfacediff: warning: {warning}", file=sys.stderr)
    kind, index = item.GetTrackTypeAndIndex() or ("video", "?")
    print(f"placed {item.GetDuration()} frames at record frame {item.GetStart()} on {kind} track {index}")
    return 0
