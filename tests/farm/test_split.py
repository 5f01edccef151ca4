"""How a shot splits: chunks cover every frame once; a chunk rebuilds every attention group its
keyframes depend on (with chained windows, all earlier ones); the sub-clip's plan makes the
shot's own keyframe calls and keeps every frame's links and weights."""

from __future__ import annotations

import numpy as np

from engine.farm.split import bracketing, chunks, needed_groups, sub_plan
from engine.keyframes import plan_keyframes
from engine.settings import Settings

CHAINED = Settings(keyframe_interval=2, keyframe_window=2, keyframe_anchors=1)  # 10 frames: 4 groups


def test_chunks_cover_every_frame_once_in_order():
    assert chunks(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert chunks(10, 10) == [(0, 10)] and chunks(3, 48) == [(0, 3)]


def test_a_chunk_rebuilds_the_groups_its_keyframes_attend_to_transitively():
    plan = plan_keyframes(10, CHAINED)
    assert plan.keyframes == (0, 2, 4, 6, 8, 9)
    assert plan.attention_groups == (((0,), (0,)), ((1, 2), (0, 1, 2)), ((3, 4), (0, 1, 2, 3, 4)),
                                     ((5,), (0, 3, 4, 5)))
    assert needed_groups(plan, bracketing(plan, [0, 1])) == [0, 1]
    # frame 9's keyframe attends to group 2, which attends to group 1: the chain reaches back
    assert needed_groups(plan, bracketing(plan, [9])) == [0, 1, 2, 3]
    short = plan_keyframes(40, Settings())  # 6 keyframes: one group, the whole keyframe pass
    assert needed_groups(short, {0}) == [0] and len(short.attention_groups) == 1


def test_the_sub_clip_plan_makes_the_shots_keyframe_calls_and_keeps_links_and_weights():
    plan = plan_keyframes(10, CHAINED)
    mine = [5, 6, 7]
    sub, members = sub_plan(plan, mine, needed_groups(plan, bracketing(plan, mine)))
    assert members == [0, 2, 4, 5, 6, 7, 8]
    shot_calls = [c.frames for c in plan.calls(8) if c.groups]
    sub_calls = [tuple(members[f] for f in c.frames) for c in sub.calls(8) if c.groups]
    assert sub_calls == shot_calls[:3]
    others = [c.frames for c in sub.calls(8) if not c.groups]
    assert [members[f] for c in others for f in c] == [5, 7]
    index = np.asarray(members)
    kf = np.asarray(plan.keyframes)
    sub_kf = np.asarray([members[k] for k in sub.keyframes])
    assert (sub_kf[sub.past] == kf[plan.past[index]]).all() and (sub_kf[sub.future] == kf[plan.future[index]]).all()
    assert (sub.w_past == plan.w_past[index]).all()
