"""Architecture presets: Stable Diffusion-shaped pipelines with random weights, no download.

In: a preset name (`tiny`, `tiny-v`, `sd21-base`). Out: the components of a
`StableDiffusionPipeline` (UNet, VAE, text encoder, tokenizer, scheduler) built from
configs in code. `tiny` keeps SD's UNet block structure (four levels, attention where SD
has it, three resnets/attentions per up block) at small widths, so every layer the engine
hooks exists in it; `tiny-v` is the same with v-prediction; `sd21-base` has the exact
SD 2.1-base shapes, so its compute cost equals the real model's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from tokenizers import pre_tokenizers
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from engine.errors import UserError
from engine.io.write import RANDOM_WEIGHTS_MARKER  # a folder saved from a preset carries it: a reload is labelled

# Stable Diffusion 2.1's scheduler (shared by every preset; only prediction_type varies).
SD_SCHEDULER = dict(
    num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
    steps_offset=1, clip_sample=False, set_alpha_to_one=False, timestep_spacing="leading",
    prediction_type="epsilon",
)


@dataclass(frozen=True)
class Preset:
    unet: dict[str, Any]
    vae: dict[str, Any]
    text: dict[str, Any]
    prediction_type: str = "epsilon"
    full_vocab: bool = False  # text encoder with CLIP's 49408-token vocabulary (cost parity)


_TINY_UNET = dict(
    sample_size=8, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(32, 32, 64, 64), norm_num_groups=8,
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    cross_attention_dim=32, attention_head_dim=(2, 4, 4, 4), use_linear_projection=True,
)
_TINY_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=8,
    block_out_channels=(8, 8, 16, 16), sample_size=64, scaling_factor=0.18215,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
)
_TINY_TEXT = dict(hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2,
                  max_position_embeddings=77, hidden_act="gelu")

PRESETS: dict[str, Preset] = {
    "tiny": Preset(_TINY_UNET, _TINY_VAE, _TINY_TEXT),
    "tiny-v": Preset(_TINY_UNET, _TINY_VAE, _TINY_TEXT, prediction_type="v_prediction"),
    "sd21-base": Preset(
        unet=dict(
            sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
            block_out_channels=(320, 640, 1280, 1280),
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), use_linear_projection=True,
        ),
        vae=dict(
            in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
            block_out_channels=(128, 256, 512, 512), scaling_factor=0.18215,
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        ),
        text=dict(hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=23,
                  max_position_embeddings=77, hidden_act="gelu", projection_dim=1024),
        full_vocab=True,
    ),
}


def preset_names() -> list[str]:
    return sorted(PRESETS)


def tiny_tokenizer() -> CLIPTokenizer:
    """A CLIP tokenizer whose vocabulary is the 256 byte symbols (plus end-of-word forms)
    and no merges: character-level, built in code, no download."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = ["<|startoftext|>", "<|endoftext|>"] + alphabet + [c + "</w>" for c in alphabet]
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=[], model_max_length=77)


def build_preset(name: str, seed: int = 0) -> dict[str, Any]:
    """Random-initialised pipeline components for preset `name` (seeded, so two builds are
    identical). Returns the keyword arguments of `StableDiffusionPipeline`."""
    if name not in PRESETS:
        raise UserError(f"unknown preset '{name}'; choose one of: {', '.join(preset_names())}.")
    preset = PRESETS[name]
    tokenizer = tiny_tokenizer()
    vocab = 49408 if preset.full_vocab else len(tokenizer)
    torch.manual_seed(seed)
    text_config = CLIPTextConfig(vocab_size=vocab, bos_token_id=0, eos_token_id=1, pad_token_id=1, **preset.text)
    components = dict(
        unet=UNet2DConditionModel(**preset.unet),
        vae=AutoencoderKL(**preset.vae),
        text_encoder=CLIPTextModel(text_config),
        tokenizer=tokenizer,
        scheduler=DDIMScheduler(**{**SD_SCHEDULER, "prediction_type": preset.prediction_type}),
    )
    for module in ("unet", "vae", "text_encoder"):
        components[module].eval()
    return components


def save_preset(name: str, folder: str | Path, seed: int = 0) -> Path:
    """Save preset `name` as a diffusers folder (`save_pretrained`) marked as random weights."""
    folder = Path(folder)
    pipe = StableDiffusionPipeline(**build_preset(name, seed), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(folder)
    (folder / RANDOM_WEIGHTS_MARKER).write_text(f"Preset '{name}' with random weights (seed {seed}).\n")
    return folder
