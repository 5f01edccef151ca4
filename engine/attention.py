"""The hooks an edit installs in a UNet: attn1 processors and one conv forward hook.

In: a UNet and a `PassState` that the edit loop sets before every UNet pass. Out: nothing
global — `FeatureHooks.apply()` installs diffusers attention processors on every attn1
(self-attention) and a forward hook on `up_blocks[1].resnets[1].conv2`, `remove()` puts
the UNet back exactly as it was. What a pass does is chosen by `PassState.mode`:

- `source`: plain per-frame attention (ε1 on the source trajectory); captures the attn1
  input tokens of every block (for correspondences), the attn1 q/k of the injection layers
  and the conv feature, as requested.
- `keyframes`: ε2 on the keyframes of one call; injected q/k (PnP) at the injection layers,
  extended attention of each keyframe group over its key keyframes as one SDPA call per
  group — keys of keyframes denoised in an earlier call come from `kv_bank`, where every call
  leaves the keys/values later groups need; attn1 outputs kept for propagation.
- `propagate`: ε2 on other frames; attn1 output replaced by keyframe outputs gathered
  through the nearest-neighbour indices and blended by temporal distance.
The conv feature is injected in `keyframes` and `propagate` passes when given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F

from engine.correspond import gather_propagated
from engine.errors import UserError

# PnP / TokenFlow injection layers: decoder self-attention except the lowest resolution's first.
INJECTION_PREFIXES = ("up_blocks.1.attentions.1.", "up_blocks.1.attentions.2.",
                      "up_blocks.2.attentions.", "up_blocks.3.attentions.")
CONV_LAYER = "up_blocks.1.resnets.1.conv2"


def is_injection_layer(name: str) -> bool:
    return name.startswith(INJECTION_PREFIXES)


@dataclass
class PassState:
    """Instructions for the next UNet pass, and what it leaves behind. Owned by one edit."""

    mode: Literal["source", "keyframes", "propagate"] = "source"
    branches: int = 1
    """Guidance branches stacked in the batch (2 with classifier-free guidance)."""
    # source pass: what to capture
    capture_tokens: bool = False
    capture_qk: bool = False
    capture_conv: bool = False
    tokens: dict[str, torch.Tensor] = field(default_factory=dict)
    qk: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    conv: torch.Tensor | None = None
    # keyframe pass: the call's keyframe positions (batch order), its attention groups, the
    # positions whose attn1 keys/values later calls need, and those kept so far per layer
    inject_qk: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None
    call: tuple[int, ...] = ()
    groups: tuple = ()
    keep: frozenset = frozenset()
    kv_bank: dict[str, dict[int, tuple[torch.Tensor, torch.Tensor]]] = field(default_factory=dict)
    kf_out: dict[str, torch.Tensor] = field(default_factory=dict)
    """keyframes: per layer the call's attn1 outputs [C, n, S, D]; propagate: those of the
    batch's keyframes, indexed by `past` / `future`."""
    # propagate pass: per layer (idx_past, idx_future) [B, S], and the batch's keyframe links
    nn: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    past: torch.Tensor | None = None
    future: torch.Tensor | None = None
    w_past: torch.Tensor | None = None
    # keyframe and propagate passes
    inject_conv: torch.Tensor | None = None

    def reset_captures(self) -> None:
        self.tokens, self.qk, self.conv = {}, {}, None


def _heads(t: torch.Tensor, heads: int) -> torch.Tensor:
    """[..., L, D] -> [..., heads, L, D/heads]."""
    *lead, length, dim = t.shape
    return t.view(*lead, length, heads, dim // heads).transpose(-3, -2)


def _merge(t: torch.Tensor) -> torch.Tensor:
    """[..., heads, L, d] -> [..., L, heads*d]."""
    *lead, heads, length, d = t.shape
    return t.transpose(-3, -2).reshape(*lead, length, heads * d)


class SelfAttentionProcessor:
    """attn1 processor of one layer; reads and writes the edit's `PassState`."""

    def __init__(self, name: str, state: PassState):
        self.name = name
        self.layer = name.removesuffix(".processor")
        self.state = state
        self.injects = is_injection_layer(name)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        st = self.state
        if st.mode == "propagate":
            idx_p, idx_f = st.nn[self.layer]
            out = gather_propagated(st.kf_out[self.layer], st.past, st.future, idx_p, idx_f, st.w_past)
            return out.reshape(hidden_states.shape)
        q, k, v = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        if st.mode == "source":
            if st.capture_tokens:
                st.tokens[self.layer] = hidden_states
            if st.capture_qk and self.injects:
                st.qk[self.layer] = (q, k)
            out = _merge(F.scaled_dot_product_attention(_heads(q, attn.heads), _heads(k, attn.heads),
                                                        _heads(v, attn.heads), scale=attn.scale))
        else:
            out = self._keyframe_attention(attn, q, k, v)
        out = attn.to_out[1](attn.to_out[0](out))
        if st.mode == "keyframes":
            st.kf_out[self.layer] = out.view(st.branches, -1, *out.shape[1:])
        return out

    def _keyframe_attention(self, attn, q, k, v):
        st = self.state
        c = st.branches
        q, k, v = (t.view(c, -1, *t.shape[1:]) for t in (q, k, v))  # [C, K, S, D]
        if st.inject_qk is not None and self.injects:
            src_q, src_k = st.inject_qk[self.layer]
            q = src_q.to(q.dtype).unsqueeze(0).expand_as(q)
            k = src_k.to(k.dtype).unsqueeze(0).expand_as(k)
        local = {p: i for i, p in enumerate(st.call or range(q.shape[1]))}
        bank = st.kv_bank.setdefault(self.layer, {})
        for p in st.keep:
            bank[p] = (k[:, local[p]].clone(), v[:, local[p]].clone())

        def tokens(t: torch.Tensor, which: int, keys: tuple[int, ...]) -> torch.Tensor:
            """[C, len(keys)·S, D]: the keys' tokens in position order, from this call or the bank."""
            if all(p in local for p in keys):
                return t[:, [local[p] for p in keys]].flatten(1, 2)
            return torch.cat([t[:, local[p]] if p in local else bank[p][which] for p in keys], dim=1)

        out = torch.empty_like(v)
        n_kf, s, d = v.shape[1:]
        for queries, keys in st.groups:
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
    """Apply/remove pair for one UNet: processors on every attn1, a forward hook on the conv
    injection layer. Use as a context manager; the UNet is restored on exit, errors too."""

    def __init__(self, unet, state: PassState):
        self.unet, self.state = unet, state
        self._saved: dict | None = None
        self._handle = None

    def apply(self) -> "FeatureHooks":
        for name, module in self.unet.named_modules():
            if name.endswith(".attn1") and _unsupported(module):
                raise UserError(f"the UNet's self-attention {name} uses {_unsupported(module)}, which the "
                                "editing processors do not implement; use a Stable Diffusion 1.x/2.x UNet.")
        self._saved = dict(self.unet.attn_processors)
        procs = {name: SelfAttentionProcessor(name, self.state) if ".attn1." in name else proc
                 for name, proc in self._saved.items()}
        self.unet.set_attn_processor(procs)
        self._handle = self.unet.get_submodule(CONV_LAYER).register_forward_hook(self._conv_hook)
        return self

    def remove(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        if self._saved is not None:
            self.unet.set_attn_processor(self._saved)
            self._saved = None

    def __enter__(self) -> "FeatureHooks":
        return self.apply()

    def __exit__(self, *exc) -> None:
        self.remove()

    def _conv_hook(self, module, inputs, output):
        st = self.state
        if st.mode == "source":
            if st.capture_conv:
                st.conv = output
            return None
        if st.inject_conv is None:
            return None
        c = st.branches
        return st.inject_conv.to(output.dtype).unsqueeze(0).expand(c, *st.inject_conv.shape).reshape(output.shape)
