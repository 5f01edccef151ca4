"""`ipfacediff train identity|direction`: fine-tune ε1 / ε2 (registered by engine/cli.py).

Multi-GPU: `accelerate launch --num_processes 2 -m engine.cli train identity ...`.
"""

from __future__ import annotations

import argparse
import sys

from engine.training.config import LR_SCHEDULERS, TrainConfig


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="folder of face images (512² CelebA-HQ-like crops; searched recursively)")
    p.add_argument("--out", required=True, help="output folder: adapter, model card, logs, samples, checkpoints")
    model = p.add_mutually_exclusive_group()
    model.add_argument("--preset", help="random-weight architecture preset (tiny, tiny-v, sd21-base): for tests")
    model.add_argument("--model", help="base model: hub id, diffusers folder or .safetensors/.ckpt file "
                                       "(default stabilityai/stable-diffusion-2-1-base)")
    p.add_argument("--model-config", help="diffusers config (hub id or folder) for a single checkpoint file")
    p.add_argument("--caption", default=TrainConfig.caption,
                   help="caption of images without one in metadata.jsonl/captions.csv/NAME.txt (default: %(default)s)")
    p.add_argument("--resolution", type=int, default=512, help="training side in pixels (default 512)")
    p.add_argument("--max-steps", type=int, default=1000, help="optimizer steps to train to (default 1000)")
    p.add_argument("--batch-size", type=int, default=8, help="images per process per micro-batch (default 8)")
    p.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step (default 1)")
    p.add_argument("--lr", type=float, dest="learning_rate", help="learning rate (default 1e-4 LoRA, 1e-5 --full)")
    p.add_argument("--lr-scheduler", default="constant", choices=LR_SCHEDULERS, help="learning-rate schedule")
    p.add_argument("--lr-warmup-steps", type=int, default=0)
    p.add_argument("--full", action="store_true", help="fine-tune the whole UNet instead of a LoRA adapter")
    p.add_argument("--lora-rank", type=int, default=16, help="LoRA rank (default 16)")
    p.add_argument("--lora-alpha", type=float, help="LoRA alpha (default: the rank)")
    p.add_argument("--lora-targets", default="to_q,to_k,to_v,to_out.0",
                   type=lambda s: tuple(x.strip() for x in s.split(",") if x.strip()),
                   help="comma-separated UNet module names the adapter wraps (default %(default)s)")
    p.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"],
                   help="default: accelerate's configuration (bf16 recommended on GPUs that have it)")
    p.add_argument("--gradient-checkpointing", action="store_true", help="trade compute for memory (UNet and VAE)")
    p.add_argument("--checkpoint-every", type=int, default=500, help="save a resumable checkpoint every N steps (0 = never)")
    p.add_argument("--checkpoints-limit", type=int, default=3, help="keep this many newest checkpoints (default 3; 0 = all)")
    p.add_argument("--resume", help="'latest' (newest in OUT/checkpoints; starts fresh if none) or a checkpoint folder")
    p.add_argument("--sample-every", type=int, default=250, help="write a sample grid every N steps (0 = never)")
    p.add_argument("--samples", type=int, default=4, help="images in a sample grid (default 4)")
    p.add_argument("--sample-t", type=int, default=500, help="timestep of the sample grid's one-pass prediction")
    p.add_argument("--t-min", type=int, default=0, help="smallest training timestep (default 0)")
    p.add_argument("--t-max", type=int, default=999, help="largest training timestep (default 999)")
    p.add_argument("--inversion-steps", type=int, default=0,
                   help="reach the timestep by this many DDIM inversion steps instead of random noise (0 = noise)")
    p.add_argument("--no-flip", dest="flip", action="store_false", help="no random left-right flips")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="data-loading worker processes (default 2)")
    p.add_argument("--overfit-batch", action="store_true",
                   help="sanity check: train on one fixed batch with fixed noise; the loss should fall")
    p.add_argument("--cpu", action="store_true", help="train on the CPU even if a GPU is present")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def register(sub) -> None:
    train = sub.add_parser("train", help="fine-tune ε1 (identity) or ε2 (direction) on face images")
    roles = train.add_subparsers(dest="role", required=True)
    ident = roles.add_parser("identity", help="ε1: reconstruct faces keeping identity (L1 + ArcFace, Eq. 5)")
    _common(ident)
    ident.add_argument("--face-embedder", default="arcface",
                       help="'arcface' (an insightface pack in ~/.insightface/models), a path to an ArcFace "
                            "ONNX such as w600k_r50.onnx, or 'tiny' (random, tests only)")
    ident.add_argument("--face-models", help="folder of an insightface pack (or its models/ root)")
    ident.add_argument("--l1-weight", type=float, default=1.0, help="weight of ‖ŷ − y0‖₁ (default 1)")
    ident.add_argument("--id-weight", type=float, default=1.0, help="weight of the ArcFace cosine distance (default 1)")
    direc = roles.add_parser("direction", help="ε2: localized, prompt-faithful edits (directional CLIP, Eq. 6)")
    _common(direc)
    direc.add_argument("--edits", help="edit list: a file with one edit a line ('wearing glasses', or a template "
                                       "with {caption}), a JSON list, or 'builtin'")
    direc.add_argument("--clip", default=TrainConfig.clip, help="CLIP hub id or folder (default %(default)s), or 'tiny'")
    direc.add_argument("--lambda1", type=float, default=0.3, help="weight of ‖f_I(y_gen) − f_I(y0)‖² (default 0.3)")
    direc.add_argument("--lambda2", type=float, default=0.7, help="weight of the directional term (default 0.7)")
    direc.add_argument("--direction-ref", choices=["pred", "image"], default="pred",
                       help="y_ref: the reference prompt's prediction from the same noise (pred) or y0 (image)")
    for p in (ident, direc):
        p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from engine.training.loop import train

    names = {f for f in TrainConfig.__dataclass_fields__}
    values = {k: v for k, v in vars(args).items() if k in names and v is not None}
    values["model"] = args.preset or args.model or TrainConfig.model
    cfg = TrainConfig(**values)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    summary = train(cfg, say=say, progress=not args.quiet)
    if not summary["main_process"]:  # under `accelerate launch`, one report
        return 0
    losses = ", ".join(f"{k} {v:.4f}" for k, v in summary["final_losses"].items())
    say(f"trained {summary['trained_steps']} steps to step {summary['steps']} in {summary['seconds']:.1f} s"
        + (f"; final {losses}" if losses else ""))
    return 0
