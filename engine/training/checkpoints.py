"""Checkpoints: which folder to resume, and what it must share with the resuming run.

A checkpoint is `OUT/checkpoints/step_NNNNNN/`: accelerate's `save_state` files (optimizer,
scheduler, RNG states) with only the trainable weights (`trainable.safetensors`), and
`train_state.json` (step, fingerprint, config).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from engine.errors import UserError
from engine.training.config import TrainConfig


def fingerprint(cfg: TrainConfig, unet) -> dict:
    """What a checkpoint must share with the run that resumes it."""
    config = {k: v for k, v in dict(unet.config).items() if not k.startswith("_")}  # `_use_default_values` is a set
    arch = hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]
    weights = "full" if cfg.full else f"lora r{cfg.lora_rank} a{cfg.lora_alpha or cfg.lora_rank} {','.join(cfg.lora_targets)}"
    return {"role": cfg.role, "base_model": cfg.model, "unet_config": arch, "weights": weights}


def checkpoints(out: Path) -> list[Path]:
    return sorted((out / "checkpoints").glob("step_*"), key=lambda p: int(p.name.split("_")[1]))


def resume_dir(cfg: TrainConfig, out: Path) -> Path | None:
    if cfg.resume is None:
        return None
    if cfg.resume == "latest":
        found = checkpoints(out)
        return found[-1] if found else None
    path = Path(cfg.resume).expanduser()
    if not (path / "train_state.json").exists():
        raise UserError(f"--resume {cfg.resume}: not a training checkpoint (no train_state.json).")
    return path
