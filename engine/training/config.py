"""Training configuration: one dataclass for both roles, validated on construction.

The CLI (`engine/training/cli.py`) maps its flags one to one onto these fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import UserError
from engine.settings import Settings

# Light on purpose (the CLI imports this to build its parser): no torch/diffusers imports.
DEFAULT_MODEL = "stabilityai/stable-diffusion-2-1-base"  # == engine.models.DEFAULT_MODEL (tested)
DEFAULT_CLIP = "openai/clip-vit-large-patch14"

LORA_WEIGHTS = "pytorch_lora_weights.safetensors"
ROLES = ("identity", "direction")
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial")


@dataclass
class TrainConfig:
    role: str
    data: str
    out: str
    model: str = DEFAULT_MODEL
    model_config: str | None = None
    edits: str | None = None
    caption: str = Settings.source_prompt
    resolution: int = 512
    max_steps: int = 1000
    batch_size: int = 8
    grad_accum: int = 1
    learning_rate: float | None = None  # None: 1e-4 for LoRA, 1e-5 (the paper's) for a full fine-tune
    lr_scheduler: str = "constant"
    lr_warmup_steps: int = 0
    weight_decay: float = 1e-2
    max_grad_norm: float = 1.0
    full: bool = False
    lora_rank: int = 16
    lora_alpha: float | None = None
    lora_targets: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0")
    mixed_precision: str | None = None  # None: accelerate's own (launch flags / config), else no|fp16|bf16
    gradient_checkpointing: bool = False
    checkpoint_every: int = 500
    checkpoints_limit: int = 3
    resume: str | None = None
    sample_every: int = 250
    samples: int = 4
    sample_t: int = 500
    seed: int = 0
    t_min: int = 0
    t_max: int = 999
    inversion_steps: int = 0
    flip: bool = True
    workers: int = 2
    overfit_batch: bool = False
    cpu: bool = False
    l1_weight: float = 1.0
    id_weight: float = 1.0
    face_embedder: str = "arcface"
    face_models: str | None = None
    lambda1: float = 0.3
    lambda2: float = 0.7
    clip: str = DEFAULT_CLIP
    direction_ref: str = "pred"

    def __post_init__(self) -> None:
        checks = [
            (self.role in ROLES, "role must be identity or direction"),
            (self.max_steps >= 1, "--max-steps must be at least 1"),
            (self.batch_size >= 1 and self.grad_accum >= 1, "--batch-size and --grad-accum must be at least 1"),
            (self.resolution >= 8, "--resolution must be at least 8"),
            (self.lora_rank >= 1, "--lora-rank must be at least 1"),
            (0 <= self.t_min <= self.t_max, "--t-min must be between 0 and --t-max"),
            (self.inversion_steps >= 0, "--inversion-steps must be 0 or more"),
            (self.checkpoint_every >= 0 and self.sample_every >= 0, "--checkpoint-every/--sample-every must be 0 or more"),
            (self.mixed_precision in (None, "no", "fp16", "bf16"), "--mixed-precision must be no, fp16 or bf16"),
            (self.direction_ref in ("pred", "image"), "--direction-ref must be pred or image"),
            (self.learning_rate is None or self.learning_rate > 0, "--lr must be positive"),
            (self.lr_scheduler in LR_SCHEDULERS, f"--lr-scheduler must be one of {', '.join(LR_SCHEDULERS)}"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message + ".")
        self.lora_targets = tuple(self.lora_targets)

    @property
    def lr(self) -> float:
        return self.learning_rate or (1e-5 if self.full else 1e-4)
