"""Editing with ε2, guided by ε1's features (paper Sec. 3.2 and 4; TokenFlow + PnP).

In: an `Inversion` (trajectory, keyframe plan, schedule, maybe cached features), the
target prompt and `Settings`. Out: the edited clean latents [N, 4, h, w]. At every step,
call by call in the order of `KeyframePlan.calls` (no UNet call holds more than one
keyframe group or `batch_size` other frames, × guidance branches):
  a. a keyframe group: ε1's q/k and conv feature for it (cached mode: ε1 re-run on the
     cached keyframe latents during the attention-injection steps, else the cached conv
     feature; recompute: ε1 on the source trajectory), then ε2 on the group (extended
     attention over its key keyframes — earlier groups' keys/values kept from their calls —,
     injected q/k and conv feature, classifier-free guidance with the negative prompt);
  b. a batch of other frames, once its past and future keyframes are done: ε2 with its attn1
     output propagated from them through nearest-neighbour correspondences;
  then one scheduler step for all frames. Features of keyframes no later call needs are dropped.
Each UNet call gets its own frozen pass spec (`engine.attention`) and a fresh sink; what
outlives a call (keyframe attn1 outputs and kept keys/values) is held by the step's `_Step`.
"""

from __future__ import annotations

import torch

from engine.attention import FeatureHooks, KeyframeSpec, PassSpec, PropagateSpec, Sink
from engine.invert import Inversion
from engine.keyframes import Call
from engine.meter import Meter
from engine.models import Models
from engine.settings import Settings
from engine.source import by_position, match, source_call


def _guided(eps: torch.Tensor, branches: int, scale: float) -> torch.Tensor:
    if branches == 1:
        return eps
    uncond, cond = eps.chunk(2)
    return uncond + scale * (cond - uncond)


class _Step:
    """One edit step: ε1's features per call and ε2's calls, sharing what earlier calls left."""

    def __init__(self, models: Models, inv: Inversion, settings: Settings, meter: Meter, hooks: FeatureHooks,
                 text: torch.Tensor, source_emb: torch.Tensor, step: int, t: torch.Tensor):
        self.m, self.inv, self.settings, self.meter, self.hooks = models, inv, settings, meter, hooks
        self.text, self.source_emb, self.i, self.t = text, source_emb, step, t
        schedule = inv.schedule
        self.j = schedule.inversion_step_of(step)
        self.inject_attn, self.inject_conv = schedule.injects_attn(step), schedule.injects_conv(step)
        self.source = None if inv.cached else inv.latents(schedule.steps - step)
        self.branches = 2 if settings.guidance_scale > 1.0 else 1
        self.row = {f: r for r, f in enumerate(inv.plan.others)}
        self.kf_out: dict[int, dict[str, torch.Tensor]] = {}
        self.kf_tokens: dict[int, dict[str, torch.Tensor]] = {}
        self.kv_bank: dict[str, dict[int, tuple[torch.Tensor, torch.Tensor]]] = {}
        """Per layer, attn1 keys/values of keyframes that later keyframe calls attend to."""

    def _source(self, frames: list[int], stage: str, x: torch.Tensor | None = None, **capture):
        x = self.source[frames] if x is None else x
        return source_call(self.m.identity, self.hooks, self.meter, x, self.t, self.source_emb, stage=stage,
                           step=self.i, **capture)

    def _direction(self, stage: str, x: torch.Tensor, frames: list[int], spec: PassSpec) -> tuple[torch.Tensor, Sink]:
        c = self.branches
        unet = self.m.direction.activate()
        with self.hooks.run(spec) as sink:
            out = self.meter.unet(stage, unet, x[frames].repeat(c, 1, 1, 1), self.t,
                                  self.text.repeat_interleave(len(frames), dim=0), self.i)
        return _guided(out, c, self.settings.guidance_scale), sink

    def keyframes(self, call: Call, x: torch.Tensor) -> torch.Tensor:
        plan, store = self.inv.plan, self.inv.store
        positions = plan.positions(call)
        qk = conv = None
        if not self.inv.cached:
            src = self._source(list(call.frames), "source", tokens=True, qk=self.inject_attn, conv=self.inject_conv)
            self.kf_tokens.update(by_position(src.tokens, positions))
            qk, conv = (src.qk if self.inject_attn else None), src.conv
        elif self.inject_attn:
            x_src = store.get(("x_kf", self.j), rows=list(positions))
            src = self._source([], "keyframe_source", x_src, qk=True, conv=self.inject_conv)
            qk, conv = src.qk, src.conv
        elif self.inject_conv:
            conv = store.get(("conv_kf", self.j), rows=list(positions))
        spec = KeyframeSpec(tuple(plan.attention_groups[g] for g in call.groups), positions, self.branches,
                            plan.kept_for_later(call), self.kv_bank, qk, conv)
        eps, sink = self._direction("keyframes", x, list(call.frames), spec)
        for layer, kept in sink.kv.items():
            self.kv_bank.setdefault(layer, {}).update(kept)
        for n, p in enumerate(positions):
            self.kf_out[p] = {layer: out[:, n] for layer, out in sink.kf_out.items()}
        return eps

    def others(self, call: Call, x: torch.Tensor) -> torch.Tensor:
        plan, store = self.inv.plan, self.inv.store
        frames = list(call.frames)
        past, future = plan.past[frames], plan.future[frames]
        if self.inv.cached:
            rows = [self.row[f] for f in frames]
            nn = store.get(("nn", self.j), rows=rows)
            conv = store.get(("conv", self.j), rows=rows) if self.inject_conv else None
        else:
            src = self._source(frames, "source", tokens=True, conv=self.inject_conv)
            nn, conv = match(src.tokens, self.kf_tokens, past, future), src.conv
        needed = sorted({int(p) for p in past} | {int(p) for p in future})
        local = {p: n for n, p in enumerate(needed)}
        dev = x.device
        spec = PropagateSpec(
            kf_out={layer: torch.stack([self.kf_out[p][layer] for p in needed], dim=1)
                    for layer in self.kf_out[needed[0]]},
            nn=nn,
            past=torch.as_tensor([local[int(p)] for p in past], device=dev),
            future=torch.as_tensor([local[int(p)] for p in future], device=dev),
            w_past=torch.as_tensor(plan.w_past[frames], device=dev),
            branches=self.branches, inject_conv=conv)
        return self._direction("propagation", x, frames, spec)[0]

    def release(self, positions: tuple[int, ...]) -> None:
        for p in positions:
            self.kf_out.pop(p, None)
            self.kf_tokens.pop(p, None)
            for bank in self.kv_bank.values():
                bank.pop(p, None)


@torch.no_grad()
def edit(models: Models, inv: Inversion, prompt: str, settings: Settings, meter: Meter,
         hooks: FeatureHooks) -> torch.Tensor:
    schedule = inv.schedule
    branches = 2 if settings.guidance_scale > 1.0 else 1
    target = models.encode_prompt(prompt)
    text = torch.cat([models.encode_prompt(settings.negative_prompt), target]) if branches == 2 else target
    source_emb = models.encode_prompt(settings.source_prompt)
    calls = inv.plan.calls(settings.batch_size)
    x = inv.latents(schedule.steps)
    for i, t in schedule.edit_timesteps():
        step = _Step(models, inv, settings, meter, hooks, text, source_emb, i, t)
        eps = torch.empty_like(x)
        for call in calls:
            eps[list(call.frames)] = (step.keyframes if call.groups else step.others)(call, x)
            step.release(call.release)
        x = schedule.forward.step(eps, t, x).prev_sample
    return x
