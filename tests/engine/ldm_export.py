"""Test utility: write a diffusers Stable Diffusion pipeline as ONE original-layout checkpoint.

In: the UNet, VAE and CLIP text encoder of a `StableDiffusionPipeline` (or their state
dicts). Out: one state dict in the original LDM / CompVis single-file key layout of SD 1.x
checkpoints (`model.diffusion_model.*`, `first_stage_model.*`,
`cond_stage_model.transformer.text_model.*`), saved as `.safetensors` or as a `.ckpt`
(`torch.save({"state_dict": ...})`).

A compact rewrite of diffusers' `scripts/convert_diffusers_to_original_stable_diffusion.py`,
generalised to any level count and `layers_per_block` (the script hard-codes SD's 4 levels
and 2 layers), mapping each key explicitly and failing on any key it does not know.
Shapes: the UNet's `proj_in`/`proj_out` are kept as they are (Linear [C, C] with
`use_linear_projection`, as in SD 2.x; a 1x1 Conv otherwise, as in SD 1.x — the same
module type either way); the VAE's mid-block attention q/k/v/proj_out become 1x1 conv
weights [C, C, 1, 1], as in the original autoencoder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import torch

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_PREFIX = "cond_stage_model.transformer."

_UNET_TOP = {
    "time_embedding.linear_1.": "time_embed.0.",
    "time_embedding.linear_2.": "time_embed.2.",
    "conv_in.": "input_blocks.0.0.",
    "conv_norm_out.": "out.0.",
    "conv_out.": "out.2.",
}
_UNET_RESNET = {"norm1.": "in_layers.0.", "conv1.": "in_layers.2.", "norm2.": "out_layers.0.",
                "conv2.": "out_layers.3.", "time_emb_proj.": "emb_layers.1.",
                "conv_shortcut.": "skip_connection."}
_VAE_ATTN = {"group_norm.": "norm.", "to_q.": "q.", "to_k.": "k.", "to_v.": "v.", "to_out.0.": "proj_out."}


def _swap_head(rest: str, table: Mapping[str, str], key: str) -> str:
    for old, new in table.items():
        if rest.startswith(old):
            return new + rest[len(old):]
    raise KeyError(f"no original-layout name for '{key}'")


def _layers(config: Mapping[str, Any]) -> int:
    layers = config["layers_per_block"]
    if not isinstance(layers, int):
        raise ValueError("per-level layers_per_block has no single-file layout")
    return layers


def unet_to_ldm(state: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """UNet2DConditionModel state dict -> `openaimodel.UNetModel` keys (no prefix)."""
    per = _layers(config) + 1  # LDM blocks per level: the layers plus one down/upsampler slot
    up_has_attn = ["CrossAttn" in t for t in config["up_block_types"]]
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        m = re.match(r"(down|up)_blocks\.(\d+)\.(resnets|attentions|downsamplers|upsamplers)\.(\d+)\.(.*)", key)
        if m:
            side, level, kind, index, rest = m[1], int(m[2]), m[3], int(m[4]), m[5]
            if kind == "resnets":
                rest = "0." + _swap_head(rest, _UNET_RESNET, key)
            elif kind == "attentions":
                rest = "1." + rest
            elif kind == "downsamplers":  # conv.weight -> op.weight
                rest = "0.op." + rest.removeprefix("conv.")
            else:  # upsampler after the level's resnet (+ attention)
                rest = f"{2 if up_has_attn[level] else 1}." + rest
            if side == "down":
                slot = (level + 1) * per if kind == "downsamplers" else 1 + level * per + index
                name = f"input_blocks.{slot}.{rest}"
            else:
                slot = level * per + (per - 1 if kind == "upsamplers" else index)
                name = f"output_blocks.{slot}.{rest}"
        elif (m := re.match(r"mid_block\.(resnets|attentions)\.(\d+)\.(.*)", key)):
            if m[1] == "resnets":
                name = f"middle_block.{2 * int(m[2])}." + _swap_head(m[3], _UNET_RESNET, key)
            else:
                name = f"middle_block.{2 * int(m[2]) + 1}.{m[3]}"
        else:
            name = _swap_head(key, _UNET_TOP, key)
        out[name] = value
    return out


def vae_to_ldm(state: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """AutoencoderKL state dict -> `ldm.models.autoencoder.AutoencoderKL` keys (no prefix)."""
    levels = len(config["block_out_channels"])
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = key.replace("conv_shortcut.", "nin_shortcut.").replace("conv_norm_out.", "norm_out.")
        if (m := re.match(r"encoder\.down_blocks\.(\d+)\.(resnets|downsamplers)\.(\d+)\.(.*)", name)):
            part = f"block.{m[3]}" if m[2] == "resnets" else "downsample"
            name = f"encoder.down.{m[1]}.{part}.{m[4]}"
        elif (m := re.match(r"decoder\.up_blocks\.(\d+)\.(resnets|upsamplers)\.(\d+)\.(.*)", name)):
            part = f"block.{m[3]}" if m[2] == "resnets" else "upsample"
            name = f"decoder.up.{levels - 1 - int(m[1])}.{part}.{m[4]}"  # original counts up-levels bottom-up
        elif (m := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)", name)):
            name = f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3]}"
        elif (m := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)", name)):
            name = f"{m[1]}.mid.attn_1." + _swap_head(m[2], _VAE_ATTN, key)
            if name.endswith(".weight") and value.ndim == 2:  # Linear -> 1x1 conv
                value = value.reshape(*value.shape, 1, 1)
        elif not re.match(r"(encoder|decoder)\.(conv_in|conv_out|norm_out)\.|(post_)?quant_conv\.", name):
            raise KeyError(f"no original-layout name for '{key}'")
        out[name] = value
    return out


def text_to_ldm(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CLIPTextModel state dict -> `FrozenCLIPEmbedder.transformer` keys (no prefix). The
    SD 1.x layout keeps transformers' names under `text_model.` (transformers >= 5.6
    flattened `CLIPTextModel`, so the prefix is added back when missing)."""
    return {(k if k.startswith("text_model.") else "text_model." + k): v for k, v in state.items()}


def pipeline_to_ldm(unet: Any, vae: Any, text_encoder: Any) -> dict[str, torch.Tensor]:
    """The three modules as one original-layout state dict (contiguous CPU tensors)."""
    parts = [(UNET_PREFIX, unet_to_ldm(unet.state_dict(), unet.config)),
             (VAE_PREFIX, vae_to_ldm(vae.state_dict(), vae.config)),
             (TEXT_PREFIX, text_to_ldm(text_encoder.state_dict()))]
    out: dict[str, torch.Tensor] = {}
    for prefix, state in parts:
        for key, value in state.items():
            out[prefix + key] = value.detach().to("cpu").contiguous().clone()
    return out


def save_single_file(path: str | Path, unet: Any, vae: Any, text_encoder: Any) -> Path:
    """Write the checkpoint: `.safetensors` (safetensors) or `.ckpt` (torch.save of
    {"state_dict": ...}, as CompVis checkpoints are)."""
    path = Path(path)
    state = pipeline_to_ldm(unet, vae, text_encoder)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file
        save_file(state, str(path))
    elif path.suffix == ".ckpt":
        torch.save({"state_dict": state}, str(path))
    else:
        raise ValueError(f"unsupported checkpoint suffix '{path.suffix}'")
    return path
