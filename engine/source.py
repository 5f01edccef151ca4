"""ε1 on the source trajectory: one UNet call's noise prediction and features, and the
nearest-neighbour correspondences of frames to their keyframes.

In: latents of some frames at a timestep and what to capture. Out: `source_call` -> a
`Captured` (noise prediction, attn1 input tokens of every attn1 layer, attn1 q/k of the
injection layers, the conv feature); `by_position` keeps a keyframe call's tokens per
keyframe; `match` gives, for a batch of other frames, the token indices into their past and
future keyframes at every attn1 layer in the smallest integer type that holds them
(independent of the batch size, so a cached inversion serves any later batching).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.attention import FeatureHooks, SourceSpec
from engine.correspond import nearest_tokens
from engine.meter import Meter
from engine.models import UNetRole


@dataclass
class Captured:
    """ε1's noise prediction and what its call's `Sink` captured (shapes there)."""

    eps: torch.Tensor
    tokens: dict[str, torch.Tensor]
    qk: dict[str, tuple[torch.Tensor, torch.Tensor]]
    conv: torch.Tensor | None


def index_int_dtype(tokens: int) -> torch.dtype:
    """Smallest integer type holding a token index (uint8 up to 256 tokens, then int16)."""
    if tokens <= 256:
        return torch.uint8
    return torch.int16 if tokens <= torch.iinfo(torch.int16).max + 1 else torch.int32


@torch.no_grad()
def source_call(role: UNetRole, hooks: FeatureHooks, meter: Meter, x: torch.Tensor, t: torch.Tensor,
                emb: torch.Tensor, *, stage: str, step: int, tokens: bool = False, qk: bool = False,
                conv: bool = False) -> Captured:
    """One ε1 call (guidance 1, source prompt) on the frames of `x`, capturing what is asked."""
    unet = role.activate()
    with hooks.run(SourceSpec(tokens, qk, conv)) as sink:
        eps = meter.unet(stage, unet, x.contiguous(), t, emb.expand(len(x), -1, -1), step)
    return Captured(eps, sink.tokens, sink.qk, sink.conv)


def by_position(tokens: dict[str, torch.Tensor], positions: tuple[int, ...]) -> dict[int, dict[str, torch.Tensor]]:
    """A keyframe call's tokens per keyframe position: {position: {layer: [S, D]}}."""
    return {p: {layer: tok[i] for layer, tok in tokens.items()} for i, p in enumerate(positions)}


@torch.no_grad()
def match(tokens: dict[str, torch.Tensor], keyframes: dict[int, dict[str, torch.Tensor]], past: np.ndarray,
          future: np.ndarray) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per attn1 layer (past, future) token indices [B, S] of a batch of frames, whose
    keyframe positions are `past` / `future`, into those keyframes' tokens."""
    needed = sorted({int(p) for p in past} | {int(p) for p in future})
    local = {p: i for i, p in enumerate(needed)}
    out = {}
    for layer, tok in tokens.items():
        kf = torch.stack([keyframes[p][layer] for p in needed])
        lp = torch.as_tensor([local[int(p)] for p in past], device=tok.device)
        lf = torch.as_tensor([local[int(p)] for p in future], device=tok.device)
        kind = index_int_dtype(tok.shape[1])
        out[layer] = (nearest_tokens(tok, kf, lp).to(kind), nearest_tokens(tok, kf, lf).to(kind))
    return out
