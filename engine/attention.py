"""The hooks an edit installs in its UNets: attn1 processors and one conv forward hook.

In: the UNets of an edit; for every UNet call a frozen pass spec — `SourceSpec`,
`KeyframeSpec` or `PropagateSpec` — given to `FeatureHooks.run(spec)`, which installs it for
exactly that call and yields a fresh `Sink` for what the call captures. Out: nothing global —
`FeatureHooks.apply()` installs diffusers attention processors on every attn1
(self-attention) and a forward hook on the conv injection layer, `remove()` puts the UNets
back exactly as they were; a hooked UNet called outside `run` raises. What a pass does:

- `SourceSpec`: plain per-frame attention (ε1 on the source trajectory); the sink gets the
  attn1 input tokens of every block (for correspondences), the attn1 q/k of the injection
  layers and the conv feature, as requested.
- `KeyframeSpec`: ε2 on the keyframes of one call; injected q/k (PnP) at the injection
  layers, extended attention of each keyframe group over its key keyframes as one SDPA call
  per group — keys of keyframes denoised in an earlier call come from the spec's `bank`
  (what those calls' sinks kept in `kv`); the sink gets the attn1 outputs (for propagation)
  and the keys/values of the `keep` positions.
- `PropagateSpec`: ε2 on other frames; attn1 output replaced by keyframe outputs gathered
  through the nearest-neighbour indices and blended by temporal distance.
The conv feature is injected in keyframe and propagate passes when the spec holds one.

The injection layers are chosen here and nowhere else: `INJECTION_PREFIXES` (attn1 q/k) and
`CONV_LAYER` (conv feature).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Union

import torch
import torch.nn.functional as F

from engine.correspond import gather_propagated
from engine.errors import UserError

# PnP / TokenFlow injection layers: decoder self-attention except the lowest resolution's first.
INJECTION_PREFIXES = ("up_blocks.1.attentions.1.", "up_blocks.1.attentions.2.",
                      "up_blocks.2.attentions.", "up_blocks.3.attentions.")
CONV_LAYER = "up_blocks.1.resnets.1.conv2"

QK = tuple[torch.Tensor, torch.Tensor]


def is_injection_layer(name: str) -> bool:
    return name.startswith(INJECTION_PREFIXES)


@dataclass(frozen=True)
class SourceSpec:
    """ε1 on source latents (guidance 1): plain attention; what the sink should capture."""

    tokens: bool = False
    qk: bool = False
    conv: bool = False


@dataclass(frozen=True)
class KeyframeSpec:
    """ε2 on the keyframes of one call, guidance branches stacked in the batch."""

    groups: tuple
    """(query positions, key positions) of the call's attention groups."""
    positions: tuple[int, ...] = ()
    """Keyframe position of each batch entry (per branch); default 0, 1, …"""
    branches: int = 1
    keep: frozenset = frozenset()
    """Positions whose attn1 keys/values later calls attend to: left in the sink's `kv`."""
    bank: Mapping[str, Mapping[int, QK]] = field(default_factory=dict)
    """Per layer, keys/values of the keyframes of earlier calls (their sinks' `kv`)."""
    inject_qk: Mapping[str, QK] | None = None
    """Per injection layer, ε1's attn1 (queries, keys) of these keyframes."""
    inject_conv: torch.Tensor | None = None


@dataclass(frozen=True)
class PropagateSpec:
    """ε2 on a batch of other frames, attn1 outputs propagated from their keyframes."""

    kf_out: Mapping[str, torch.Tensor]
    """Per layer, the attn1 outputs [C, K, S, D] of the batch's K keyframes."""
    nn: Mapping[str, QK]
    """Per layer, (idx_past, idx_future) [B, S] token indices into those keyframes."""
    past: torch.Tensor
    """[B] position (in `kf_out`) of each frame's past keyframe; `future` likewise."""
    future: torch.Tensor
    w_past: torch.Tensor
    branches: int = 1
    inject_conv: torch.Tensor | None = None


PassSpec = Union[SourceSpec, KeyframeSpec, PropagateSpec]


@dataclass
class Sink:
    """What one UNet call captured; every `FeatureHooks.run` yields a new one."""

    tokens: dict[str, torch.Tensor] = field(default_factory=dict)
    """Source: per attn1 layer, the layer's input tokens [B, S, D]."""
    qk: dict[str, QK] = field(default_factory=dict)
    """Source: per injection layer, attn1 (queries, keys) [B, S, D]."""
    conv: torch.Tensor | None = None
    kf_out: dict[str, torch.Tensor] = field(default_factory=dict)
    """Keyframes: per layer, the call's attn1 outputs [C, n, S, D]."""
    kv: dict[str, dict[int, QK]] = field(default_factory=dict)
    """Keyframes: per layer, the keys/values of the spec's `keep` positions."""


Current = Callable[[], tuple[PassSpec, Sink]]


def _heads(t: torch.Tensor, heads: int) -> torch.Tensor:
    """[..., L, D] -> [..., heads, L, D/heads]."""
    *lead, length, dim = t.shape
    return t.view(*lead, length, heads, dim // heads).transpose(-3, -2)


def _merge(t: torch.Tensor) -> torch.Tensor:
    """[..., heads, L, d] -> [..., L, heads*d]."""
    *lead, heads, length, d = t.shape
    return t.transpose(-3, -2).reshape(*lead, length, heads * d)


class SelfAttentionProcessor:
    """attn1 processor of one layer; `current()` gives the running pass's spec and sink."""

    def __init__(self, name: str, current: Current):
        self.name = name
        self.layer = name.removesuffix(".processor")
        self.current = current
        self.injects = is_injection_layer(name)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        spec, sink = self.current()
        if isinstance(spec, PropagateSpec):
            idx_p, idx_f = spec.nn[self.layer]
            out = gather_propagated(spec.kf_out[self.layer], spec.past, spec.future, idx_p, idx_f, spec.w_past)
            return out.reshape(hidden_states.shape)
        q, k, v = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        if isinstance(spec, SourceSpec):
            if spec.tokens:
                sink.tokens[self.layer] = hidden_states
            if spec.qk and self.injects:
                sink.qk[self.layer] = (q, k)
            out = _merge(F.scaled_dot_product_attention(_heads(q, attn.heads), _heads(k, attn.heads),
                                                        _heads(v, attn.heads), scale=attn.scale))
            return attn.to_out[1](attn.to_out[0](out))
        out = attn.to_out[1](attn.to_out[0](self._keyframe_attention(attn, spec, sink, q, k, v)))
        sink.kf_out[self.layer] = out.view(spec.branches, -1, *out.shape[1:])
        return out

    def _keyframe_attention(self, attn, spec: KeyframeSpec, sink: Sink, q, k, v):
        c = spec.branches
        q, k, v = (t.view(c, -1, *t.shape[1:]) for t in (q, k, v))  # [C, K, S, D]
        if spec.inject_qk is not None and self.injects:
            src_q, src_k = spec.inject_qk[self.layer]
            q = src_q.to(q.dtype).unsqueeze(0).expand_as(q)
            k = src_k.to(k.dtype).unsqueeze(0).expand_as(k)
        local = {p: i for i, p in enumerate(spec.positions or range(q.shape[1]))}
        if spec.keep:
            sink.kv[self.layer] = {p: (k[:, local[p]].clone(), v[:, local[p]].clone()) for p in spec.keep}
        bank = spec.bank.get(self.layer, {})

        def tokens(t: torch.Tensor, which: int, keys: tuple[int, ...]) -> torch.Tensor:
            """[C, len(keys)·S, D]: the keys' tokens in position order, from this call or the bank."""
            if all(p in local for p in keys):
                return t[:, [local[p] for p in keys]].flatten(1, 2)
            return torch.cat([t[:, local[p]] if p in local else bank[p][which] for p in keys], dim=1)

        out = torch.empty_like(v)
        n_kf, s, d = v.shape[1:]
        for queries, keys in spec.groups:
            qi = [local[p] for p in queries]
            # One SDPA call per group: all its keyframes' queries against the concatenated
            # tokens of its key keyframes; K/V are never repeated per keyframe.
            qg = _heads(q[:, qi].reshape(c, len(qi) * s, d), attn.heads)
            kg, vg = _heads(tokens(k, 0, keys), attn.heads), _heads(tokens(v, 1, keys), attn.heads)
            out[:, qi] = _merge(F.scaled_dot_product_attention(qg, kg, vg, scale=attn.scale)).view(c, len(qi), s, d)
        return out.view(c * n_kf, s, d)


def _unsupported(attn) -> str | None:
    """Name of an attention feature SD 1.x/2.x self-attention never uses, if this layer does."""
    for feature in ("spatial_norm", "group_norm", "norm_q", "norm_k"):
        if getattr(attn, feature, None) is not None:
            return feature
    if getattr(attn, "residual_connection", False) or getattr(attn, "rescale_output_factor", 1.0) != 1.0:
        return "a residual connection"
    return None


class FeatureHooks:
    """Apply/remove pair for the UNets of one edit: processors on every attn1, a forward hook
    on the conv injection layer. Use as a context manager; the UNets are restored on exit,
    errors too. `run(spec)` is the only way a pass reaches the hooks."""

    def __init__(self, *unets):
        self.unets = unets
        self._saved: list[tuple[object, dict]] = []
        self._handles: list = []
        self._pass: tuple[PassSpec, Sink] | None = None

    def apply(self) -> "FeatureHooks":
        for unet in self.unets:
            for name, module in unet.named_modules():
                if name.endswith(".attn1") and _unsupported(module):
                    raise UserError(f"the UNet's self-attention {name} uses {_unsupported(module)}, which the "
                                    "editing processors do not implement; use a Stable Diffusion 1.x/2.x UNet.")
        try:
            for unet in self.unets:
                saved = dict(unet.attn_processors)
                self._saved.append((unet, saved))
                unet.set_attn_processor({name: SelfAttentionProcessor(name, self.current) if ".attn1." in name
                                         else proc for name, proc in saved.items()})
                self._handles.append(unet.get_submodule(CONV_LAYER).register_forward_hook(self._conv_hook))
        except BaseException:
            self.remove()
            raise
        return self

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        for unet, saved in self._saved:
            unet.set_attn_processor(saved)
        self._handles, self._saved = [], []

    def __enter__(self) -> "FeatureHooks":
        return self.apply()

    def __exit__(self, *exc) -> None:
        self.remove()

    @contextmanager
    def run(self, spec: PassSpec) -> Iterator[Sink]:
        """Install `spec` for the one UNet call made inside; yields that call's new `Sink`."""
        if self._pass is not None:
            raise RuntimeError("a UNet pass is already running; passes do not nest.")
        sink = Sink()
        self._pass = (spec, sink)
        try:
            yield sink
        finally:
            self._pass = None

    def current(self) -> tuple[PassSpec, Sink]:
        if self._pass is None:
            raise RuntimeError("a hooked UNet was called outside FeatureHooks.run: every call needs its pass spec.")
        return self._pass

    def _conv_hook(self, module, inputs, output):
        spec, sink = self.current()
        if isinstance(spec, SourceSpec):
            if spec.conv:
                sink.conv = output
            return None
        if spec.inject_conv is None:
            return None
        c = spec.branches
        return spec.inject_conv.to(output.dtype).unsqueeze(0).expand(c, *spec.inject_conv.shape).reshape(output.shape)
