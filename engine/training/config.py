"""Training configuration: one dataclass for both roles, validated on construction.

The CLI (`engine/training/cli.py`) generates one flag per field (`engine.dataclass_cli`): type,
choices, default and help (the docstring under each field) come from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from engine.errors import UserError
from engine.settings import Settings

# Light on purpose (the CLI imports this to build its parser): no torch/diffusers imports.
DEFAULT_MODEL = "stabilityai/stable-diffusion-2-1-base"  # == engine.models.DEFAULT_MODEL (tested)
DEFAULT_CLIP = "openai/clip-vit-large-patch14"

LORA_WEIGHTS = "pytorch_lora_weights.safetensors"
ROLES = ("identity", "direction")
LrScheduler = Literal["constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial"]
LR_SCHEDULERS = get_args(LrScheduler)


@dataclass
class TrainConfig:
    role: str
    """`identity` trains ε1 (Eq. 5), `direction` trains ε2 (Eq. 6); the subcommand sets it."""
    data: str
    """Folder of face images (512² CelebA-HQ-like crops; searched recursively)."""
    out: str
    """Output folder: adapter, model card, logs, samples, checkpoints."""
    model: str = DEFAULT_MODEL
    """Base model: hub id, diffusers folder or .safetensors/.ckpt file."""
    model_config: str | None = None
    """Diffusers config (hub id or folder) for a single checkpoint file."""
    edits: str | None = None
    """ε2's edit list: a file with one edit a line ('wearing glasses', or a template with
    {caption}), a JSON list, or `builtin`."""
    caption: str = Settings.source_prompt
    """Caption of images without one in metadata.jsonl/captions.csv/NAME.txt."""
    resolution: int | None = None
    """Training side in pixels; None: the model's native size (512 for SD 2.1-base, 64 for the tiny presets)."""
    max_steps: int = 1000
    """Optimizer steps to train to."""
    batch_size: int = 8
    """Images per process per micro-batch."""
    grad_accum: int = 1
    """Micro-batches per optimizer step."""
    learning_rate: float | None = None
    """Learning rate; None: 1e-4 for LoRA, 1e-5 (the paper's) for a full fine-tune."""
    lr_scheduler: LrScheduler = "constant"
    """Learning-rate schedule (diffusers' `get_scheduler`)."""
    lr_warmup_steps: int = 0
    """Optimizer steps of warm-up at the start of the schedule."""
    weight_decay: float = 1e-2
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this norm (0 = no clipping)."""
    full: bool = False
    """Fine-tune the whole UNet instead of a LoRA adapter."""
    lora_rank: int = 16
    """LoRA rank."""
    lora_alpha: float | None = None
    """LoRA alpha; None: the rank."""
    lora_targets: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0")
    """Comma-separated UNet module names the adapter wraps."""
    mixed_precision: Literal["no", "fp16", "bf16"] | None = None
    """None: accelerate's configuration (launch flags / config file); bf16 is recommended
    on GPUs that have it."""
    gradient_checkpointing: bool = False
    """Trade compute for memory (UNet and VAE)."""
    checkpoint_every: int = 500
    """Save a resumable checkpoint every this many steps (0 = never)."""
    checkpoints_limit: int = 3
    """Keep this many newest checkpoints (0 = all)."""
    resume: str | None = None
    """`latest` (the newest in OUT/checkpoints; starts fresh if there is none) or a checkpoint folder."""
    sample_every: int = 250
    """Write a sample grid every this many steps (0 = never)."""
    samples: int = 4
    """Images in a sample grid."""
    sample_t: int = 500
    """Timestep of the sample grid's one-pass prediction."""
    seed: int = 0
    """Seeds the batch order, flips, noise and timesteps (a resumed run repeats an uninterrupted one)."""
    t_min: int = 0
    """Smallest training timestep."""
    t_max: int = 999
    """Largest training timestep."""
    inversion_steps: int = 0
    """Reach the timestep by this many DDIM inversion steps instead of random noise (0 = noise)."""
    flip: bool = True
    """Flip half the images left-right at random (`--no-flip`: never)."""
    workers: int = 2
    """Data-loading worker processes."""
    overfit_batch: bool = False
    """Sanity check: train on one fixed batch with fixed noise; the loss should fall."""
    cpu: bool = False
    """Train on the CPU even if a GPU is present."""
    l1_weight: float = 1.0
    """ε1: weight of ‖ŷ − y0‖₁."""
    id_weight: float = 1.0
    """ε1: weight of the ArcFace cosine distance."""
    face_embedder: str = "arcface"
    """ε1's identity model: `arcface` (an insightface pack in ~/.insightface/models), a path
    to an ArcFace ONNX such as w600k_r50.onnx, or `tiny` (random, tests only)."""
    face_models: str | None = None
    """Folder of an insightface pack (or its models/ root)."""
    lambda1: float = 0.3
    """ε2: weight of ‖f_I(y_gen) − f_I(y0)‖²."""
    lambda2: float = 0.7
    """ε2: weight of the directional term."""
    clip: str = DEFAULT_CLIP
    """ε2's CLIP: hub id or folder, or `tiny` (random, tests only)."""
    direction_ref: Literal["pred", "image"] = "pred"
    """y_ref: the reference prompt's prediction from the same noise (`pred`) or y0 (`image`)."""

    def __post_init__(self) -> None:
        checks = [
            (self.role in ROLES, "role must be identity or direction"),
            (self.max_steps >= 1, "--max-steps must be at least 1"),
            (self.batch_size >= 1 and self.grad_accum >= 1, "--batch-size and --grad-accum must be at least 1"),
            (self.resolution is None or self.resolution >= 8, "--resolution must be at least 8"),
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
