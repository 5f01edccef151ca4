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
class Call:
    """One UNet call of a pass: keyframe groups (`groups`, indices into `attention_groups`) or,
    with no groups, a batch of other frames; `release`: keyframe positions no later call of
    the pass needs (their kept features can go)."""

    groups: tuple[int, ...]
    frames: tuple[int, ...]
    release: tuple[int, ...] = ()


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
    """(query keyframe positions, key keyframe positions) per group, in call order. Each group
    is denoised in one UNet call; its keys are its own queries and queries of earlier groups,
    so a group needs only the attn1 keys/values kept from earlier calls."""
    spine: tuple[int, ...] = ()
    """Positions of the keyframes that bound the segments (every `keyframe_window`-th and the
    last); empty when all keyframes are one group. A segment depends on nothing outside its
    two spine keyframes and the anchors, so its start is where a farm chunk starts cheaply."""

    @property
    def others(self) -> list[int]:
        kf = set(self.keyframes)
        return [i for i in range(self.n_frames) if i not in kf]

    def positions(self, call: Call) -> tuple[int, ...]:
        """Keyframe positions of a keyframe call, in its batch order."""
        return tuple(p for g in call.groups for p in self.attention_groups[g][0])

    def kept_for_later(self, call: Call) -> frozenset:
        """Positions of `call` whose attn1 keys/values a later group attends to."""
        mine = set(self.positions(call))
        later = [keys for g, (_, keys) in enumerate(self.attention_groups) if g > max(call.groups)]
        return frozenset(p for keys in later for p in keys if p in mine)

    def calls(self, batch_size: int) -> list[Call]:
        """The calls of one pass in order: each keyframe group, then every batch of at most
        `batch_size` other frames (frame order) as soon as its past and future keyframes are
        done, so only the keyframes still needed are held at any time."""
        kf = self.keyframes
        waiting, ready, done, out = list(self.others), [], set(), []
        for g, (queries, _) in enumerate(self.attention_groups):
            out.append(Call((g,), tuple(kf[p] for p in queries)))
            done |= set(queries)
            now = [f for f in waiting if self.past[f] in done and self.future[f] in done]
            ready, waiting = ready + now, [f for f in waiting if not (self.past[f] in done and self.future[f] in done)]
            while len(ready) >= batch_size or (ready and g == len(self.attention_groups) - 1):
                out.append(Call((), tuple(ready[:batch_size])))
                ready = ready[batch_size:]
        last: dict[int, int] = {}
        for n, call in enumerate(out):
            used = ([p for g in call.groups for p in self.attention_groups[g][1]] if call.groups else
                    [int(self.past[f]) for f in call.frames] + [int(self.future[f]) for f in call.frames])
            last.update({p: n for p in used})
        return [Call(c.groups, c.frames, tuple(sorted(p for p, n in last.items() if n == i)))
                for i, c in enumerate(out)]


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


def _attention_groups(n_kf: int, window: int, anchors: int) -> tuple[tuple, tuple[int, ...]]:
    """(attention groups in call order, spine). One group of all keyframes when they fit in
    `window` (or `window` is 0); no spine. Otherwise three levels, each attending only to the
    levels before it, so no keyframe's result depends on more than its segment's two spine
    keyframes and the anchors (a farm chunk rebuilds only those, `engine.farm.split`):
    the `anchors` evenly spread keyframes, attending to each other; the spine — every
    `window`-th keyframe and the last — each attending to itself and the anchors; and the
    keyframes between two spine keyframes (a segment, at most `window - 1`), attending to
    each other, both spine keyframes and the anchors. Calls go segment by segment, so what is
    kept at once stays flat; both neighbours of every segment boundary see the same spine
    keyframe, and no keyframe depends on segments far before it."""
    if window == 0 or n_kf <= window:
        everyone = tuple(range(n_kf))
        return ((everyone, everyone),), ()
    anchor = set(np.linspace(0, n_kf - 1, anchors).round().astype(int).tolist()) if anchors else set()
    spine = tuple(sorted(set(range(0, n_kf, window)) | {n_kf - 1}))
    groups = [(tuple(sorted(anchor)), tuple(sorted(anchor)))] if anchor else []

    def alone(p: int) -> None:
        if p not in anchor:
            groups.append(((p,), tuple(sorted(anchor | {p}))))

    alone(spine[0])
    for start, end in zip(spine, spine[1:]):
        alone(end)
        inner = tuple(p for p in range(start + 1, end) if p not in anchor)
        if inner:
            groups.append((inner, tuple(sorted(anchor | set(inner) | {start, end}))))
    return tuple(groups), spine


def plan_keyframes(n_frames: int, settings: Settings) -> KeyframePlan:
    if n_frames < 1:
        raise UserError("the clip has no frames.")
    if settings.keyframe_window and settings.keyframe_anchors > settings.keyframe_window:
        raise UserError(f"keyframe_anchors ({settings.keyframe_anchors}) must not exceed keyframe_window "
                        f"({settings.keyframe_window}): the anchors are denoised in one UNet call.")
    kfs = select_keyframes(n_frames, settings)
    kf = np.asarray(kfs)
    frames = np.arange(n_frames)
    future = np.searchsorted(kf, frames, side="left").clip(max=len(kf) - 1)
    past = (np.searchsorted(kf, frames, side="right") - 1).clip(min=0)
    gap = (kf[future] - kf[past]).astype(np.float64)
    w_past = np.where(gap > 0, (kf[future] - frames) / np.where(gap > 0, gap, 1), 1.0)
    # Outside the first/last keyframe only one side exists: copy from it alone.
    w_past = np.where(frames < kf[0], 0.0, np.where(frames > kf[-1], 1.0, w_past))
    groups, spine = _attention_groups(len(kfs), settings.keyframe_window, settings.keyframe_anchors)
    return KeyframePlan(n_frames, kfs, past, future, w_past.astype(np.float32), groups, spine)
