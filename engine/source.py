"""ε1 on the source trajectory at one timestep: its noise prediction and its features.

In: latents of every frame at a timestep, the keyframe plan, and what to capture. Out: a
`SourceStep` — the noise prediction (inversion uses it), the keyframes' attn1 q/k at the
injection layers, the conv feature of every frame, and for every other frame the
nearest-neighbour token indices into its past and future keyframes at every attn1 layer
(independent of the batch size, so a cached inversion serves any later batching).
Keyframes run first so their tokens are there when the other frames are matched.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.attention import PassState
from engine.correspond import nearest_tokens
from engine.keyframes import KeyframePlan
from engine.meter import Meter
from engine.models import UNetRole


@dataclass
class SourceStep:
    eps: torch.Tensor
    kf_qk: dict[str, tuple[torch.Tensor, torch.Tensor]] | None
    conv: torch.Tensor | None
    nn: dict[str, tuple[torch.Tensor, torch.Tensor]] | None
    """Per attn1 layer: (past, future) token indices [len(plan.others), S], in `plan.others` order."""


def chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def index_int_dtype(tokens: int) -> torch.dtype:
    """Smallest integer type holding a token index (int16 halves the correspondence cache)."""
    return torch.int16 if tokens <= torch.iinfo(torch.int16).max else torch.int32


@torch.no_grad()
def run_source(role: UNetRole, plan: KeyframePlan, state: PassState, meter: Meter, x: torch.Tensor,
               t: torch.Tensor, emb: torch.Tensor, *, batch_size: int, step: int, stage: str,
               want_nn: bool, want_qk: bool, want_conv: bool) -> SourceStep:
    unet = role.activate()
    state.mode, state.branches = "source", 1
    state.capture_tokens, state.capture_conv = want_nn, want_conv
    eps = torch.empty_like(x)
    conv: list[tuple[list[int], torch.Tensor]] = []
    kf_tokens: dict[str, list[torch.Tensor]] = {}
    kf_qk: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}

    def call(frames: list[int]) -> None:
        state.reset_captures()
        eps[frames] = meter.unet(stage, unet, x[frames], t, emb.expand(len(frames), -1, -1), step)
        if want_conv:
            conv.append((frames, state.conv))

    state.capture_qk = want_qk
    for frames in chunks(list(plan.keyframes), batch_size):
        call(frames)
        for layer, tok in state.tokens.items():
            kf_tokens.setdefault(layer, []).append(tok)
        for layer, qk in state.qk.items():
            kf_qk.setdefault(layer, []).append(qk)
    tokens = {layer: torch.cat(parts) for layer, parts in kf_tokens.items()}

    state.capture_qk = False
    nn_parts: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    past, future = torch.as_tensor(plan.past, device=x.device), torch.as_tensor(plan.future, device=x.device)
    for frames in chunks(plan.others, batch_size):
        call(frames)
        for layer, tok in state.tokens.items():
            kind = index_int_dtype(tok.shape[1])
            nn_parts.setdefault(layer, []).append(
                (nearest_tokens(tok, tokens[layer], past[frames]).to(kind),
                 nearest_tokens(tok, tokens[layer], future[frames]).to(kind)))
    state.reset_captures()
    state.capture_tokens = state.capture_conv = False

    conv_all = None
    if want_conv:
        first = conv[0][1]
        conv_all = first.new_empty((x.shape[0], *first.shape[1:]))
        for frames, feature in conv:
            conv_all[frames] = feature
    qk = {layer: (torch.cat([q for q, _ in parts]), torch.cat([k for _, k in parts]))
          for layer, parts in kf_qk.items()} if want_qk else None
    nn = {layer: (torch.cat([p for p, _ in parts]), torch.cat([f for _, f in parts]))
          for layer, parts in nn_parts.items()} if want_nn else None
    return SourceStep(eps, qk, conv_all, nn)
