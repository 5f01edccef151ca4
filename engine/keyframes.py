"""Keyframe plan: which frames are keyframes, which keyframes each frame copies from, and
which keyframes each keyframe attends to.

In: frame count and `Settings`. Out: a `KeyframePlan`, fixed for the whole edit (unlike
TokenFlow, keyframes are not re-drawn each step, so cached correspondences stay valid).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.errors import UserError
from engine.settings import Settings


@dataclass(frozen=True)
class KeyframePlan:
    n_frames: int
    keyframes: tuple[int, ...]
    """Frame indices of the keyframes, ascending."""
    past: np.ndarray
    """[N] position (in `keyframes`) of each frame's nearest keyframe at or before it."""
    future: np.ndarray
    """[N] position of the nearest keyframe at or after it (equal to `past` when bracketed
    on one side only)."""
    w_past: np.ndarray
    """[N] blend weight of the past keyframe (1 - weight of the future one), by distance."""
    attention_groups: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]
    """(query keyframe positions, key keyframe positions) per extended-attention call."""

    @property
    def others(self) -> list[int]:
        kf = set(self.keyframes)
        return [i for i in range(self.n_frames) if i not in kf]


def select_keyframes(n_frames: int, settings: Settings) -> tuple[int, ...]:
    if settings.keyframes is not None:
        bad = [k for k in settings.keyframes if not 0 <= k < n_frames]
        if bad or not settings.keyframes:
            raise UserError(f"keyframes must lie within 0..{n_frames - 1}; got {list(settings.keyframes)}.")
        return tuple(settings.keyframes)
    k = settings.keyframe_interval
    if settings.keyframe_strategy == "grid":
        chosen = set(range(0, n_frames, k))
    else:
        rng = np.random.default_rng(settings.seed)
        chosen = {int(rng.integers(s, min(s + k, n_frames))) for s in range(0, n_frames, k)} | {0}
    return tuple(sorted(chosen | {n_frames - 1}))


def _attention_groups(n_kf: int, window: int, anchors: int) -> tuple:
    """Chunks of `window` consecutive keyframes; each chunk attends to itself, `window`
    keyframes on each side and `anchors` evenly spread keyframes. window 0: one group."""
    if window == 0 or n_kf <= 2 * window + 1 + anchors:
        everyone = tuple(range(n_kf))
        return ((everyone, everyone),)
    anchor_set = set(np.linspace(0, n_kf - 1, anchors).round().astype(int).tolist()) if anchors else set()
    groups = []
    for start in range(0, n_kf, window):
        queries = tuple(range(start, min(start + window, n_kf)))
        near = range(max(0, start - window), min(n_kf, start + 2 * window))
        groups.append((queries, tuple(sorted(set(near) | anchor_set))))
    return tuple(groups)


def plan_keyframes(n_frames: int, settings: Settings) -> KeyframePlan:
    if n_frames < 1:
        raise UserError("the clip has no frames.")
    kfs = select_keyframes(n_frames, settings)
    kf = np.asarray(kfs)
    frames = np.arange(n_frames)
    future = np.searchsorted(kf, frames, side="left").clip(max=len(kf) - 1)
    past = (np.searchsorted(kf, frames, side="right") - 1).clip(min=0)
    gap = (kf[future] - kf[past]).astype(np.float64)
    w_past = np.where(gap > 0, (kf[future] - frames) / np.where(gap > 0, gap, 1), 1.0)
    # Outside the first/last keyframe only one side exists: copy from it alone.
    w_past = np.where(frames < kf[0], 0.0, np.where(frames > kf[-1], 1.0, w_past))
    return KeyframePlan(n_frames, kfs, past, future, w_past.astype(np.float32),
                        _attention_groups(len(kfs), settings.keyframe_window, settings.keyframe_anchors))
