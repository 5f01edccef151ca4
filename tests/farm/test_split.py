"""How a shot splits: chunks cover every frame once, their boundaries on keyframe segment starts;
a chunk rebuilds only its segments, their spine keyframes and the anchors (never the groups
before it, however long the shot); the keyframes more than one chunk needs are the shared
ones; the sub-clip's plan makes the shot's own keyframe calls and keeps links and weights."""

from __future__ import annotations

import numpy as np

from engine.farm.split import bracketing, chunks, cut_frames, needed_groups, shared_groups, sub_plan
from engine.keyframes import plan_keyframes
from engine.settings import Settings

SEGMENTED = Settings(keyframe_interval=2, keyframe_window=2, keyframe_anchors=1)  # 10 frames: 6 groups


def test_chunks_cover_every_frame_once_in_order():
    assert chunks(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert chunks(10, 10) == [(0, 10)] and chunks(3, 48) == [(0, 3)]


def test_chunk_boundaries_move_onto_the_nearest_segment_start_within_half_a_chunk():
    plan = plan_keyframes(1200, Settings())  # a segment every 64 frames
    cuts = cut_frames(plan)
    assert cuts == list(range(64, 1200, 64))
    assert chunks(1200, 48, cuts) == [(a, min(a + 64, 1200)) for a in range(0, 1200, 64)]
    assert chunks(96, 48, cut_frames(plan_keyframes(96, Settings()))) == [(0, 64), (64, 96)]
    assert chunks(300, 100, cuts) == [(0, 128), (128, 256), (256, 300)]  # 100 is 28 from 128, 36 from 64
    assert chunks(10, 2, [4, 8]) == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]  # no cut within one frame


def test_a_chunk_rebuilds_its_segments_their_spine_keyframes_and_the_anchors_only():
    plan = plan_keyframes(10, SEGMENTED)
    assert plan.keyframes == (0, 2, 4, 6, 8, 9) and plan.spine == (0, 2, 4, 5)
    assert plan.attention_groups == (((0,), (0,)), ((2,), (0, 2)), ((1,), (0, 1, 2)), ((4,), (0, 4)),
                                     ((3,), (0, 2, 3, 4)), ((5,), (0, 5)))
    assert needed_groups(plan, bracketing(plan, [0, 1])) == [0, 1, 2]
    # frame 7 lies between keyframes 6 and 8: their segment, its two spine keyframes, the anchor
    assert needed_groups(plan, bracketing(plan, [7])) == [0, 1, 3, 4]
    short = plan_keyframes(40, Settings())  # 6 keyframes: one group, the whole keyframe pass
    assert needed_groups(short, {0}) == [0] and len(short.attention_groups) == 1


def test_a_late_chunk_of_a_long_shot_rebuilds_as_few_keyframes_as_an_early_one():
    plan = plan_keyframes(1200, Settings())
    layout = chunks(1200, 48, cut_frames(plan))
    rebuilt = [len(sub_plan(plan, list(range(a, b)), needed_groups(plan, bracketing(plan, list(range(a, b)))))[0]
                   .keyframes) for a, b in layout]
    assert max(rebuilt) <= 8 + 1 + 2 and rebuilt[-2] == rebuilt[1]
    own = [len([f for f in plan.keyframes if a <= f < b]) for a, b in layout]
    assert max(r - k for r, k in zip(rebuilt, own)) <= 3  # the next spine keyframe and the anchors (docs/farm.md)
    # shared: the anchors and the spine keyframe at every boundary between chunks
    shared = shared_groups(plan, [list(range(a, b)) for a, b in layout])
    positions = sorted(p for g in shared for p in plan.attention_groups[g][0])
    kf = plan.keyframes
    assert [kf[p] for p in positions] == [0] + [a for a, _ in layout[1:]] + [1199]


def test_the_sub_clip_plan_makes_the_shots_keyframe_calls_and_keeps_links_and_weights():
    plan = plan_keyframes(10, SEGMENTED)
    mine = [5, 6, 7]
    sub, members = sub_plan(plan, mine, needed_groups(plan, bracketing(plan, mine)))
    assert members == [0, 4, 5, 6, 7, 8]  # not keyframe 2: segment 6-8 attends to 4, 8 and the anchor 0
    shot_calls = [c.frames for c in plan.calls(8) if c.groups]
    sub_calls = [tuple(members[f] for f in c.frames) for c in sub.calls(8) if c.groups]
    assert sub_calls == [shot_calls[g] for g in (0, 1, 3, 4)]
    others = [c.frames for c in sub.calls(8) if not c.groups]
    assert [members[f] for c in others for f in c] == [5, 7]
    index = np.asarray(members)
    kf = np.asarray(plan.keyframes)
    sub_kf = np.asarray([members[k] for k in sub.keyframes])
    assert (sub_kf[sub.past] == kf[plan.past[index]]).all() and (sub_kf[sub.future] == kf[plan.future[index]]).all()
    assert (sub.w_past == plan.w_past[index]).all()
