"""How a shot's edit splits into farm tasks without changing its result.

In: the shot's `KeyframePlan`, the frame count and a chunk size. Out: `chunks` (the
[start, stop) frame ranges of the propagate tasks, boundaries moved onto segment starts),
`needed_groups` (the keyframe attention groups a set of keyframes depends on: its own groups
and, transitively, every group whose keyframes they attend to — with the engine's segments
that is the segment, its two spine keyframes and the anchors), `shared_groups` (those more
than one chunk needs: the Keyframes step edits them once and every chunk checks its rebuild
against that) and `sub_plan`: the plan of the sub-clip "those groups' keyframes + a chunk's
frames", with the same keyframes, attention groups (in call order), links and blend weights
as in the whole shot, so the engine's own `invert` and `edit` run on it reproduce the shot's
keyframe calls exactly and the chunk's frames up to the batching of their UNet calls.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from engine.errors import UserError
from engine.keyframes import KeyframePlan


def cut_frames(plan: KeyframePlan) -> list[int]:
    """Frames where a chunk starts cheaply: the spine keyframes inside the shot (a chunk from one
    to the next rebuilds only the next one and the anchors besides its own keyframes)."""
    last = len(plan.keyframes) - 1
    return [plan.keyframes[p] for p in plan.spine if 0 < p < last]


def chunks(n_frames: int, size: int, cuts: list[int] | tuple[int, ...] = ()) -> list[tuple[int, int]]:
    """Consecutive [start, stop) ranges of about `size` frames covering 0..n_frames-1. A boundary
    moves to the nearest of `cuts` when one lies less than half a chunk from it; the last chunk
    takes what is left once that is `size` frames or fewer."""
    if size < 1:
        raise UserError(f"--chunk-size must be 1 or more, not {size}.")
    out, start = [], 0
    while start < n_frames:
        stop = start + size
        near = [c for c in cuts if start < c < n_frames and abs(c - stop) < size / 2]
        stop = n_frames if n_frames - start <= size else min(near, key=lambda c: (abs(c - stop), c), default=stop)
        out.append((start, stop))
        start = stop
    return out


def needed_groups(plan: KeyframePlan, positions: set[int] | list[int]) -> list[int]:
    """Attention groups (indices, call order) whose calls rebuild the keyframes at `positions`."""
    owner = {p: g for g, (queries, _) in enumerate(plan.attention_groups) for p in queries}
    todo, done = {owner[p] for p in positions}, set()
    while todo:
        g = todo.pop()
        done.add(g)
        todo |= {owner[p] for p in plan.attention_groups[g][1]} - done
    return sorted(done)


def shared_groups(plan: KeyframePlan, chunk_frames: list[list[int]]) -> list[int]:
    """Attention groups that more than one of the chunks (their frames, as plan indices) needs."""
    needs = Counter(g for frames in chunk_frames if frames
                    for g in needed_groups(plan, bracketing(plan, frames)))
    return sorted(g for g, n in needs.items() if n > 1)


def bracketing(plan: KeyframePlan, frames: list[int]) -> set[int]:
    """Keyframe positions the frames copy from (a keyframe's own position for a keyframe)."""
    return {int(p) for p in plan.past[frames]} | {int(p) for p in plan.future[frames]}


def sub_plan(plan: KeyframePlan, frames: list[int], groups: list[int]) -> tuple[KeyframePlan, list[int]]:
    """(plan of the sub-clip, its frames as shot indices in order). The sub-clip holds the
    keyframes of `groups` and `frames`; every frame's past and future keyframe must be among them."""
    positions = sorted(p for g in groups for p in plan.attention_groups[g][0])
    kf_frames = [plan.keyframes[p] for p in positions]
    members = sorted(set(kf_frames) | set(frames))
    local = {f: i for i, f in enumerate(members)}
    at = {p: i for i, p in enumerate(positions)}
    index = np.asarray(members, dtype=np.int64)
    past = np.asarray([at[int(p)] for p in plan.past[index]], dtype=np.int64)
    future = np.asarray([at[int(p)] for p in plan.future[index]], dtype=np.int64)
    attention = tuple((tuple(at[p] for p in plan.attention_groups[g][0]),
                       tuple(at[p] for p in plan.attention_groups[g][1])) for g in groups)
    sub = KeyframePlan(len(members), tuple(local[f] for f in kf_frames), past, future,
                       plan.w_past[index].copy(), attention)
    return sub, members
