"""Nearest-neighbour correspondence (TokenFlow) between frames and keyframes.

In: source-trajectory attn1 input tokens of some frames [B, S, D] and of the keyframes
[K, S, D], plus each frame's past/future keyframe. Out: for each frame and side, the index
of the most cosine-similar keyframe token for every token ([B, S], int32), and the gather
that turns keyframe attn1 outputs into a frame's propagated attn1 output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def nearest_tokens(frame_tokens: torch.Tensor, keyframe_tokens: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
    """argmax_j cos(frame_tokens[b, i], keyframe_tokens[which[b], j]) -> [B, S] int32."""
    f = F.normalize(frame_tokens.float(), dim=-1)
    k = F.normalize(keyframe_tokens.float(), dim=-1)[which]
    return torch.bmm(f, k.transpose(1, 2)).argmax(dim=-1).to(torch.int32)


def gather_propagated(kf_out: torch.Tensor, past: torch.Tensor, future: torch.Tensor,
                      idx_past: torch.Tensor, idx_future: torch.Tensor, w_past: torch.Tensor) -> torch.Tensor:
    """Propagated attn1 output of B frames from keyframe outputs.

    kf_out: [C, K, S, D] (C guidance branches); past/future: [B] keyframe positions;
    idx_*: [B, S] token indices; w_past: [B]. Returns [C, B, S, D]:
    w_past·kf_out[:, past, idx_past] + (1 − w_past)·kf_out[:, future, idx_future].
    """
    s = idx_past.shape[1]
    rows_p = past[:, None].expand(-1, s)
    rows_f = future[:, None].expand(-1, s)
    a = kf_out[:, rows_p, idx_past.long()]
    b = kf_out[:, rows_f, idx_future.long()]
    w = w_past.to(kf_out.dtype)[None, :, None, None]
    return torch.lerp(b, a, w)
