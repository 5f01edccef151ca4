"""Subcommands `serve` and `keys`, and what `edit --engine ADDR` runs (`cmd_edit_remote`).

In: argparse subparsers (from engine.cli, through the `ipfacediff.commands` entry point), or the
parsed `edit` arguments (through `ipfacediff.remote`). Out: `serve` runs the engine until
SHUTDOWN or a signal (exit 0; 2 with one sentence for bad configuration, checked before any
model loads); `keys` writes CURVE key files; `edit --engine` runs the edit through a running
engine and writes the same files as the in-process edit.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from engine.cli import add_model_args
from engine.errors import UserError
from server import cache, joblog, jobs
from server import protocol as P

CONNECT_S = 5.0  # how long `edit --engine` waits for the engine's first answer
LIMIT_HELP = {  # the engine's request limits (protocol.Limits; reported in HELLO)
    "max_parts": "refuse (too_large) a message of more parts than this",
    "max_part_bytes": "refuse (too_large) a message with a part larger than this (bytes)",
    "max_message_bytes": "refuse (too_large) a message larger than this (bytes)",
    "max_frames": "refuse (too_large) a job of more frames than this",
    "max_side": "refuse (too_large) frames with a longer side than this (pixels)",
    "max_queue": "refuse (queue_full) a SUBMIT while this many jobs are queued",
}


def register(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="run the engine: models stay loaded, clients talk ZeroMQ (docs/protocol.md)")
    serve.add_argument("--bind", default=P.DEFAULT_ADDRESS, help=f"ZeroMQ endpoint (default {P.DEFAULT_ADDRESS}); any "
                       "non-loopback tcp address requires --keys")
    add_model_args(serve)
    serve.add_argument("--device", default="auto", help="cuda, cuda:1, mps or cpu (default auto: the first "
                       "GPU, else cpu)")
    serve.add_argument("--dtype", default="auto", help="bfloat16, float16 or float32 (default auto: bf16/fp16 "
                       "on a GPU, fp32 on cpu)")
    serve.add_argument("--state-dir", type=Path, default=Path.home() / ".cache" / "ipfacediff" / "engine",
                       help="job table, inputs and results (survive restarts)")
    serve.add_argument("--media-root", action="append", default=[], metavar="DIR",
                       help="folder clients may name in paths (repeatable); none: inline frames only")
    serve.add_argument("--keys", type=Path, help="folder from `ipfacediff keys`: server key pair and clients/ allow-list")
    serve.add_argument("--curve", action="store_true", help="require CURVE even on a loopback/ipc bind")
    serve.add_argument("--cache-bytes", type=int, default=cache.DEFAULT_BYTES,
                       help="inversion cache budget in memory (bytes; device or pinned host)")
    serve.add_argument("--cache-disk-bytes", type=int, default=cache.DEFAULT_DISK_BYTES,
                       help="inversion cache budget on disk under <state-dir>/inversions (bytes; 0: no disk tier)")
    serve.add_argument("--keep-results", type=duration, default=jobs.KEEP_RESULTS_S, metavar="TIME",
                       help="release finished jobs (inputs and results) this long after they end: seconds or "
                            "30m / 12h / 7d (default 7d)")
    serve.add_argument("--max-results-bytes", type=int, default=jobs.MAX_RESULTS_BYTES,
                       help="release the oldest finished jobs while their files exceed this (default 64 GiB)")
    serve.add_argument("--min-free-bytes", type=int, default=jobs.MIN_FREE_BYTES,
                       help="refuse a SUBMIT (disk_full) whose input would leave less free on the state dir's disk")
    serve.add_argument("--heartbeat", type=float, default=1.0, help="seconds between heartbeats")
    serve.add_argument("--no-fsync", action="store_true", help="skip fsync of results (tmpfs, benchmarks)")
    serve.add_argument("--log-level", choices=joblog.LEVELS, default="info",
                       help="info (default): each job's arrival, start, every 10 %% of progress and end; debug: "
                            "also every request and error reply (type, id, job, client); warning: failed jobs, "
                            "errors and the engine's ready/shutdown lines only; error: errors only")
    serve.add_argument("--log-file", type=Path, help="also append the log here, with timestamps")
    for name, text in LIMIT_HELP.items():
        default = getattr(P.Limits(), name)
        serve.add_argument("--" + name.replace("_", "-"), type=int, default=default, help=f"{text} (default {default})")
    serve.set_defaults(func=cmd_serve)

    keys = sub.add_parser("keys", help="create CURVE keys: the engine's pair and one pair per allowed client")
    keys.add_argument("--dir", type=Path, required=True, help="folder for the keys: server.key(_secret) and "
                      "clients/NAME.key(_secret); created if missing")
    keys.add_argument("--client", action="append", default=[], help="client name (repeatable)")
    keys.set_defaults(func=cmd_keys)


def duration(text: str) -> float:
    """'90', '90s', '30m', '12h' or '7d' -> seconds (argparse type)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 3600, 30m, 12h or 7d") from None
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive duration")
    return seconds


def check_bind(bind: str, keys: Path | None, curve: bool) -> None:
    """Refuse (before anything is loaded or bound) a non-local bind, or --curve, without usable keys."""
    if not (curve or not P.endpoint_is_local(bind)):
        return
    why = f"binding {bind} (not loopback or ipc://)" if not P.endpoint_is_local(bind) else "--curve"
    if keys is None:
        raise UserError(f"{why} requires CURVE keys and a client allow-list; create them with "
                        "`ipfacediff keys --dir KEYS --client NAME` and pass --keys KEYS.")
    if not (keys / "server.key_secret").is_file() or not any((keys / "clients").glob("*.key")):
        raise UserError(f"{keys} lacks server.key_secret or clients/*.key; run `ipfacediff keys --dir {keys} "
                        "--client NAME`.")


def cmd_serve(args: argparse.Namespace) -> int:
    check_bind(args.bind, args.keys, args.curve)
    jobs.check_state_dir(args.state_dir)
    for root in args.media_root:
        if not Path(root).is_dir():
            raise UserError(f"the media root {root} is not a folder.")
    try:  # before any model loads
        logger = joblog.configure("ipfacediff.engine", args.log_level, args.log_file)
    except OSError as exc:
        raise UserError(f"cannot write the log file {args.log_file}: {exc.strerror}.") from None
    from engine.editor import Editor
    from engine.models import DEFAULT_MODEL
    from server.service import Options, Service

    limits = P.Limits(**{n: getattr(args, n) for n in LIMIT_HELP})
    opts = Options(bind=args.bind, state_dir=args.state_dir, media_roots=args.media_root, limits=limits,
                   cache_bytes=args.cache_bytes, cache_disk_bytes=args.cache_disk_bytes, keys_dir=args.keys,
                   curve=args.curve, heartbeat_s=args.heartbeat, fsync=not args.no_fsync,
                   keep_results_s=args.keep_results, max_results_bytes=args.max_results_bytes,
                   min_free_bytes=args.min_free_bytes)
    editor = Editor(args.preset or args.model or DEFAULT_MODEL,
                    identity=args.identity_model, direction=args.direction_model, device=args.device,
                    dtype=args.dtype, model_config=args.model_config)
    service = Service(editor, opts, log=logger)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: service.stop())
    try:
        service.run()
    except Exception as exc:
        import zmq

        if isinstance(exc, zmq.ZMQError):
            raise UserError(f"cannot bind {args.bind}: {exc}.") from None
        raise
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from server.security import create_keys

    made = create_keys(args.dir, args.client)
    for path in made:
        print(path)
    print(f"engine: ipfacediff serve --keys {args.dir} ...; clients use {args.dir}/server.key and their "
          f"clients/NAME.key_secret (copy only those to the client).", file=sys.stderr)
    return 0


def client_for(address: str, keys: Path | None):
    """A client connected to the engine at `address`, or one sentence on how to start one
    (within CONNECT_S seconds, not after the client's reconnect attempts)."""
    from server.client import Client, EngineGone
    from server.security import load_client_keys

    curve = load_client_keys(keys) if keys else None
    client = Client(address, curve=curve)
    try:
        client.connect(timeout=CONNECT_S, retry=False)
    except EngineGone:
        client.close()
        raise UserError(f"no engine answered at {address} within {CONNECT_S:.0f} s; start one with "
                        f"`ipfacediff serve --bind {address}`" + (" --keys KEYS (and check --engine-keys)" if keys
                                                                  else "") + ", or check --engine.") from None
    return client


def cmd_edit_remote(args: argparse.Namespace) -> int:
    """`edit --engine`: read frames here, send them inline, write the returned frames, stats, QC line and
    --report exactly as in-process; the engine's refusals are the user's one sentence (exit 2)."""
    from engine.cli import Log, check_edit_outputs, parse_range, settings_from_args, write_outputs
    from engine.io import read_frames
    from engine.io.colour import ModelFrames
    from engine.io.sequence import edited_name
    from engine.progress import StageProgress
    from engine.prompts import check_prompt
    from server.client import EngineError, EngineGone, EngineHung

    if args.preset or args.model or args.identity_model or args.direction_model:
        raise UserError("--engine uses the engine's loaded model; drop --preset/--model/--identity-model/"
                        "--direction-model.")
    prompt = check_prompt(args.prompt)
    settings = settings_from_args(args)
    clip = read_frames(args.input, parse_range(args.frames))
    working = ModelFrames.prepare(clip, args.input_colorspace, args.output_colorspace, args.format)
    args.name = args.name or edited_name(clip.naming)
    check_edit_outputs(args, clip)  # everything checkable, before the engine is asked
    client = client_for(args.engine, args.engine_keys)
    random_weights = bool(client.info.get("random_weights", False))
    log = Log(random_weights)
    progress = None if args.quiet else StageProgress(prefix=log.prefix)

    def show(ev: dict) -> None:
        if progress is not None and ev["type"] == "PROGRESS":
            progress(ev["stage"], ev["step"], ev["fraction"], ev.get("eta_s"))

    try:
        log(f"engine {args.engine}: model {client.info.get('model')} on {client.info.get('device')}")
        accepted = client.submit(prompt, frames=working.frames, settings=settings)
        job = accepted["job"]
        for warning in accepted.get("warnings") or []:
            log(f"warning: {warning}")
        final = client.wait(job, on_event=show)
        result = client.result(job)
        if result.status != P.DONE:
            raise UserError(f"the engine did not finish job {job}: {final.get('error') or result.reason}")
        client.release(job)
    except EngineError as exc:
        if exc.code == "internal":
            raise
        raise UserError(f"the engine refused the edit: {exc.message}") from None
    except (EngineGone, EngineHung) as exc:
        raise UserError(f"{exc} Nothing was written; check the engine (ipfacediff serve) and run again.") from None
    finally:
        if progress is not None:
            progress.close()
        client.close()
    stats = dict(result.stats)
    return write_outputs(args, clip, working, result.frames, stats, stats.pop("qc", None), random_weights, log,
                         via=" via the engine")
