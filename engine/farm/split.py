"""How a shot's edit splits into farm tasks without changing its result.

In: the shot's `KeyframePlan`, the frame count and a chunk size. Out: `chunks` (the
[start, stop) frame ranges of the propagate tasks), `needed_groups` (the keyframe attention
groups a set of keyframes depends on: its own groups and, transitively, every group whose
keyframes they attend to — with the engine's chained windows that is a prefix of the
groups) and `sub_plan`: the plan of the sub-clip "those groups' keyframes + a chunk's
frames", with the same keyframes, attention groups (in call order), links and blend weights
as in the whole shot, so the engine's own `invert` and `edit` run on it reproduce the shot's
keyframe calls exactly and the chunk's frames up to the batching of their UNet calls.
"""

from __future__ import annotations

import numpy as np

from engine.errors import UserError
from engine.keyframes import KeyframePlan


def chunks(n_frames: int, size: int) -> list[tuple[int, int]]:
    """Consecutive [start, stop) ranges of at most `size` frames covering 0..n_frames-1."""
    if size < 1:
        raise UserError(f"--chunk-size must be 1 or more, not {size}.")
    return [(a, min(a + size, n_frames)) for a in range(0, n_frames, size)]


def needed_groups(plan: KeyframePlan, positions: set[int] | list[int]) -> list[int]:
    """Attention groups (indices, call order) whose calls rebuild the keyframes at `positions`."""
    owner = {p: g for g, (queries, _) in enumerate(plan.attention_groups) for p in queries}
    todo, done = {owner[p] for p in positions}, set()
    while todo:
        g = todo.pop()
        done.add(g)
        todo |= {owner[p] for p in plan.attention_groups[g][1]} - done
    return sorted(done)


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
