"""Editing with ε2, guided by ε1's features (paper Sec. 3.2 and 4; TokenFlow + PnP).

In: an `Inversion` (trajectory, keyframe plan, schedule, maybe cached features), the
target prompt and `Settings`. Out: the edited clean latents [N, 4, h, w]. At every step:
  a. ε1's source features: from the cache, or recomputed on the source trajectory;
  b. the keyframes denoised jointly by ε2 (extended attention, injected q/k and conv
     feature, classifier-free guidance with the negative prompt);
  c. every other frame denoised by ε2 with its attn1 output propagated from its past and
     future keyframes through nearest-neighbour correspondences;
  d. one scheduler step for all frames.
"""

from __future__ import annotations

import torch

from engine.attention import PassState
from engine.invert import Inversion
from engine.meter import Meter
from engine.models import Models
from engine.settings import Settings
from engine.source import run_source


def _guided(eps: torch.Tensor, branches: int, scale: float) -> torch.Tensor:
    if branches == 1:
        return eps
    uncond, cond = eps.chunk(2)
    return uncond + scale * (cond - uncond)


@torch.no_grad()
def edit(models: Models, inv: Inversion, prompt: str, settings: Settings, meter: Meter,
         state: PassState) -> torch.Tensor:
    plan, schedule = inv.plan, inv.schedule
    branches = 2 if settings.guidance_scale > 1.0 else 1
    target = models.encode_prompt(prompt)
    text = torch.cat([models.encode_prompt(settings.negative_prompt), target]) if branches == 2 else target
    source_emb = models.encode_prompt(settings.source_prompt)

    def embeddings(n: int) -> torch.Tensor:
        return text.repeat_interleave(n, dim=0)

    dev = models.device
    kf = list(plan.keyframes)
    past, future = torch.as_tensor(plan.past, device=dev), torch.as_tensor(plan.future, device=dev)
    w_past = torch.as_tensor(plan.w_past, device=dev)
    others = torch.as_tensor(plan.others, device=dev, dtype=torch.long)
    x = inv.latents(schedule.steps)

    for i, t in schedule.edit_timesteps():
        inject_attn, inject_conv = schedule.injects_attn(i), schedule.injects_conv(i)
        if inv.cached:
            j = schedule.inversion_step_of(i)
            kf_qk = inv.store.get(("kf_qk", j)) if inject_attn else None
            conv = inv.store.get(("conv", j)) if inject_conv else None
            nn = inv.store.get(("nn", j))
        else:
            src = run_source(models.identity, plan, state, meter, inv.latents(schedule.steps - i), t, source_emb,
                             batch_size=settings.batch_size, step=i, stage="source",
                             want_nn=True, want_qk=inject_attn, want_conv=inject_conv)
            kf_qk, conv, nn = src.kf_qk, src.conv, src.nn

        unet = models.direction.activate()
        eps = torch.empty_like(x)
        state.branches = branches
        state.mode, state.inject_qk, state.groups = "keyframes", kf_qk, plan.attention_groups
        state.inject_conv = conv[kf] if conv is not None else None
        state.kf_out = {}
        out = meter.unet("keyframes", unet, x[kf].repeat(branches, 1, 1, 1), t, embeddings(len(kf)), i)
        eps[kf] = _guided(out, branches, settings.guidance_scale)

        state.mode = "propagate"
        for lo in range(0, len(others), settings.batch_size):
            hi = lo + settings.batch_size
            frames = others[lo:hi]
            state.nn = {layer: (p[lo:hi], f[lo:hi]) for layer, (p, f) in nn.items()}
            state.past, state.future, state.w_past = past[frames], future[frames], w_past[frames]
            state.inject_conv = conv[frames] if conv is not None else None
            out = meter.unet("propagation", unet, x[frames].repeat(branches, 1, 1, 1), t, embeddings(len(frames)), i)
            eps[frames] = _guided(out, branches, settings.guidance_scale)
        state.kf_out, state.nn, state.inject_qk, state.inject_conv = {}, {}, None, None
        x = schedule.forward.step(eps, t, x).prev_sample
    return x
