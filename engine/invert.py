"""VAE encode/decode (batched, tiled above 512 px) and DDIM inversion of every frame with ε1.

In: frames as a float tensor [N, 3, H, W] in 0..1, the models, the keyframe plan. Out: an
`Inversion` — the whole trajectory x_t of every frame (step 0 is the clean latent), kept in
a `TensorStore` (device or pinned host), and under `cached` source features, ε1's features
captured during the same passes (keyframe q/k and conv feature for the injection steps,
nearest-neighbour indices of every other frame at every step).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch

from engine.attention import PassState
from engine.keyframes import KeyframePlan
from engine.meter import Meter
from engine.models import Models
from engine.schedule import Schedule
from engine.settings import Settings
from engine.source import run_source
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
def decode(models: Models, latents: torch.Tensor, meter: Meter, batch_size: int) -> torch.Tensor:
    vae, cfg = models.vae, models.vae.config
    shift = cfg.get("shift_factor") or 0.0
    out = []
    for i in range(0, latents.shape[0], batch_size):
        z = latents[i:i + batch_size].to(models.vae_dtype) / cfg.scaling_factor + shift
        with meter.timed("vae"), _tiled(vae, max(z.shape[-2:]) * models.vae_scale_factor):
            x = vae.decode(z).sample
        out.append(((x.float() + 1) / 2).clamp(0, 1).cpu())
    return torch.cat(out)


@torch.no_grad()
def invert(models: Models, latents: torch.Tensor, plan: KeyframePlan, schedule: Schedule, settings: Settings,
           meter: Meter, state: PassState) -> Inversion:
    """DDIM inversion with ε1 at guidance 1 and the source prompt."""
    cached = settings.source_features == "cached"
    store = TensorStore(models.device, settings.offload_cache)
    emb = models.encode_prompt(settings.source_prompt)
    x = latents
    store.put(("x", 0), x)
    for j, t in enumerate(schedule.inverse.timesteps):
        edit_step = schedule.steps - 1 - j
        src = run_source(models.identity, plan, state, meter, x, t, emb, batch_size=settings.batch_size,
                         step=j, stage="inversion", want_nn=cached,
                         want_qk=cached and schedule.injects_attn(edit_step),
                         want_conv=cached and schedule.injects_conv(edit_step))
        if cached:
            store.put(("nn", j), src.nn)
            if src.kf_qk is not None:
                store.put(("kf_qk", j), src.kf_qk)
            if src.conv is not None:
                store.put(("conv", j), src.conv)
        x = schedule.inverse.step(src.eps, t, x).prev_sample
        store.put(("x", j + 1), x)
    return Inversion(store, plan, schedule, cached)
