"""VAE encode/decode (batched, tiled above 512 px) and DDIM inversion of every frame with ε1.

In: frames as a float tensor [N, 3, H, W] in 0..1, the models, the keyframe plan. Out: an
`Inversion` in a `TensorStore` (device, host, or a spill file). `recompute`: the whole
trajectory x_t of every frame. `cached`: what the edit cannot cheaply redo, captured during
the same ε1 passes — x_T of every frame; per step, the nearest-neighbour indices of every
other frame; the conv feature of every other frame for the conv-injection steps, and of the
keyframes for those conv steps that do not also inject attention; the keyframes' latents
for the attention-injection steps (the edit re-runs ε1 on them to get their attn1 q/k and
conv feature back, bit for bit, ≈ K/N·τ_attn·T extra evaluations per frame).
`cache_layout` computes the same bytes from the shapes alone.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.attention import CONV_LAYER, FeatureHooks
from engine.keyframes import KeyframePlan
from engine.meter import Meter
from engine.models import Models
from engine.schedule import Schedule
from engine.settings import Settings
from engine.source import by_position, index_int_dtype, match, source_call
from engine.store import TensorStore

TILE_ABOVE = 512


@dataclass
class Inversion:
    store: TensorStore
    plan: KeyframePlan
    schedule: Schedule
    cached: bool
    """True when ε1's features were captured and are in the store."""
    signature: tuple = ()
    """What the inversion depends on (frames, model, settings); set by the `Editor`."""

    def latents(self, step: int) -> torch.Tensor:
        return self.store.get(("x", step))


@contextmanager
def _tiled(vae, side: int):
    """VAE tiling for frames above 512 px, switched on for this call only."""
    tile = side > TILE_ABOVE
    if tile:
        vae.enable_tiling()
    try:
        yield
    finally:
        if tile:
            vae.disable_tiling()


@torch.no_grad()
def encode(models: Models, frames: torch.Tensor, meter: Meter, batch_size: int) -> torch.Tensor:
    vae, cfg = models.vae, models.vae.config
    shift = cfg.get("shift_factor") or 0.0
    out = []
    for i in range(0, frames.shape[0], batch_size):
        x = frames[i:i + batch_size].to(models.device, models.vae_dtype) * 2 - 1
        with meter.timed("vae"), _tiled(vae, max(x.shape[-2:])):
            z = vae.encode(x).latent_dist.mode()
        out.append(((z - shift) * cfg.scaling_factor).float())
    return torch.cat(out)


@torch.no_grad()
def decode(models: Models, latents: torch.Tensor, meter: Meter, batch_size: int):
    """Decoded images [B, H, W, 3] float32 0..1 on the host, one batch at a time (a generator, so
    the caller converts each batch before the next: no float copy of the whole clip)."""
    vae, cfg = models.vae, models.vae.config
    shift = cfg.get("shift_factor") or 0.0
    for i in range(0, latents.shape[0], batch_size):
        z = latents[i:i + batch_size].to(models.vae_dtype) / cfg.scaling_factor + shift
        with meter.timed("vae"), _tiled(vae, max(z.shape[-2:]) * models.vae_scale_factor):
            x = vae.decode(z).sample
        yield ((x.float() + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).cpu()


@torch.no_grad()
def invert(models: Models, latents: torch.Tensor, plan: KeyframePlan, schedule: Schedule, settings: Settings,
           meter: Meter, hooks: FeatureHooks, spill: str | Path | None = None) -> Inversion:
    """DDIM inversion with ε1 at guidance 1 and the source prompt; `spill`: the store's spill folder."""
    cached = settings.source_features == "cached"
    store = TensorStore(models.device, settings.offload_cache, settings.cache_host_bytes, spill)
    emb = models.encode_prompt(settings.source_prompt)
    n_kf, n_other = len(plan.keyframes), len(plan.others)
    row = {f: i for i, f in enumerate(plan.others)}
    calls = plan.calls(settings.batch_size)
    x = latents
    for j, t in enumerate(schedule.inverse.timesteps):
        edit_step = schedule.edit_step_of(j)
        want_qk, want_conv = cached and schedule.injects_attn(edit_step), cached and schedule.injects_conv(edit_step)
        if want_qk:
            store.put(("x_kf", j), x[list(plan.keyframes)])
        eps = torch.empty_like(x)
        kf_tokens: dict[int, dict[str, torch.Tensor]] = {}
        for call in calls:
            frames = list(call.frames)
            src = source_call(models.identity, hooks, meter, x[frames], t, emb, stage="inversion", step=j,
                              tokens=cached, conv=want_conv)
            eps[frames] = src.eps
            if call.groups:
                positions = list(plan.positions(call))
                kf_tokens.update(by_position(src.tokens, plan.positions(call)) if cached else {})
                if want_conv and not want_qk:
                    store.put_rows(("conv_kf", j), n_kf, positions, src.conv)
            elif cached:
                rows = [row[f] for f in frames]
                store.put_rows(("nn", j), n_other, rows, match(src.tokens, kf_tokens, plan.past[frames],
                                                               plan.future[frames]))
                if want_conv:
                    store.put_rows(("conv", j), n_other, rows, src.conv)
            for p in call.release:
                kf_tokens.pop(p, None)
        x = schedule.inverse.step(eps, t, x).prev_sample
        if not cached or j == schedule.steps - 1:
            store.put(("x", j + 1), x)
    return Inversion(store, plan, schedule, cached)


def _attn1_tokens(unet_config: dict, h: int, w: int) -> list[int]:
    """Tokens of every attn1 layer of an SD-style UNet on an h×w latent."""
    levels = len(unet_config["block_out_channels"])
    per = unet_config.get("transformer_layers_per_block", 1) or 1
    side = [(-(-h // 2 ** d)) * (-(-w // 2 ** d)) for d in range(levels)]
    tokens = [side[d] for d, kind in enumerate(unet_config["down_block_types"]) if "CrossAttn" in kind
              for _ in range(unet_config["layers_per_block"] * per)]
    tokens += [side[-1]] * per  # the middle block
    tokens += [side[levels - 1 - u] for u, kind in enumerate(unet_config["up_block_types"]) if "CrossAttn" in kind
               for _ in range((unet_config["layers_per_block"] + 1) * per)]
    return tokens


def cache_layout(unet_config: dict, latent: tuple[int, int, int], n_frames: int, n_keyframes: int,
                 schedule_steps: tuple[int, int, int], feature_bytes: int, cached: bool = True) -> dict[str, int]:
    """Bytes of a cached inversion by item, from the shapes alone: `latent` (channels, h, w),
    `schedule_steps` (T, attention-injection steps, conv-injection steps), `feature_bytes` the
    UNet dtype's element size. Matches `TensorStore.nbytes` of an `invert` to the byte."""
    c, h, w = latent
    steps, attn, conv = schedule_steps
    x = c * h * w * 4  # fp32, as all latents
    if not cached:
        return {"trajectory": steps * n_frames * x}
    others = n_frames - n_keyframes
    index = sum(2 * s * index_int_dtype(s).itemsize for s in _attn1_tokens(unet_config, h, w))
    levels = len(unet_config["block_out_channels"])
    up = int(CONV_LAYER.split(".")[1])  # the conv injection layer is a resnet conv of this up block
    ch, cw = -(-h // 2 ** (levels - 1 - up)), -(-w // 2 ** (levels - 1 - up))
    feature = list(reversed(unet_config["block_out_channels"]))[up] * ch * cw * feature_bytes
    return {"trajectory": n_frames * x + attn * n_keyframes * x,
            "correspondences": steps * others * index,
            "conv feature": conv * others * feature + max(conv - attn, 0) * n_keyframes * feature}
