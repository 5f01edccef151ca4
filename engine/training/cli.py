"""`ipfacediff train identity|direction`: fine-tune ε1 / ε2 (registered by engine/cli.py).

Multi-GPU: `accelerate launch --num_processes 2 -m engine.cli train identity ...`.
"""

from __future__ import annotations

import argparse
import sys

from engine.dataclass_cli import add_dataclass_flags, dataclass_values
from engine.training.config import TrainConfig

# Fields that only one role reads; the other fields are flags of both subcommands.
ROLE_FIELDS = {"identity": ("face_embedder", "face_models", "l1_weight", "id_weight"),
               "direction": ("edits", "clip", "lambda1", "lambda2", "direction_ref")}
ALIASES = {"learning_rate": ["--lr"]}


def _flags(p: argparse.ArgumentParser, role: str) -> None:
    """One flag per TrainConfig field the role reads (`engine.dataclass_cli`), plus --preset
    (a random-weight `model`) and --quiet."""
    shared = {name for name in TrainConfig.__dataclass_fields__ if name != "role"}
    shared -= {name for names in ROLE_FIELDS.values() for name in names}
    group = p.add_argument_group("training settings (defaults from engine.training.config.TrainConfig)")
    model = group.add_mutually_exclusive_group()
    model.add_argument("--preset", help="random-weight architecture preset (tiny, tiny-v, sd21-base): for tests")
    add_dataclass_flags(group, TrainConfig, names=shared | set(ROLE_FIELDS[role]), aliases=ALIASES,
                        containers={"model": model})
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def register(sub) -> None:
    train = sub.add_parser("train", help="fine-tune ε1 (identity) or ε2 (direction) on face images")
    roles = train.add_subparsers(dest="role", required=True)
    helps = {"identity": "ε1: reconstruct faces keeping identity (L1 + ArcFace, Eq. 5)",
             "direction": "ε2: localized, prompt-faithful edits (directional CLIP, Eq. 6)"}
    for role, text in helps.items():
        parser = roles.add_parser(role, help=text)
        _flags(parser, role)
        parser.set_defaults(func=cmd_train)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = dataclass_values(TrainConfig, args)
    if args.preset:
        values["model"] = args.preset
    return TrainConfig(**values)


def cmd_train(args: argparse.Namespace) -> int:
    from engine.io.write import RANDOM_WEIGHTS_LABEL
    from engine.training.loop import train

    cfg = config_from_args(args)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    summary = train(cfg, say=say, progress=not args.quiet)
    if not summary["main_process"]:  # under `accelerate launch`, one report
        return 0
    losses = ", ".join(f"{k} {v:.4f}" for k, v in summary["final_losses"].items())
    label = f"{RANDOM_WEIGHTS_LABEL} " if summary["random_weights"] else ""
    say(f"{label}trained {summary['trained_steps']} steps to step {summary['steps']} in {summary['seconds']:.1f} s"
        + (f"; final {losses}" if losses else ""))
    return 0
