import numpy as np
import pytest

from engine.errors import UserError
from engine.keyframes import plan_keyframes
from engine.settings import Settings


def test_default_grid_every_8th_plus_last():
    plan = plan_keyframes(20, Settings())
    assert plan.keyframes == (0, 8, 16, 19)
    assert plan.others == [i for i in range(20) if i not in (0, 8, 16, 19)]


def test_neighbours_and_distance_weights():
    plan = plan_keyframes(17, Settings())  # keyframes 0, 8, 16
    assert (plan.past[3], plan.future[3]) == (0, 1)
    assert plan.w_past[2] == pytest.approx(6 / 8) and plan.w_past[6] == pytest.approx(2 / 8)
    assert plan.w_past[8] == 1.0 and plan.past[8] == plan.future[8] == 1


def test_frames_outside_keyframes_copy_the_nearest_one():
    plan = plan_keyframes(10, Settings(keyframes=(3, 6)))
    assert plan.future[0] == 0 and plan.w_past[0] == 0.0
    assert plan.past[9] == 1 and plan.w_past[9] == 1.0


def test_random_strategy_is_seeded():
    a = plan_keyframes(64, Settings(keyframe_strategy="random", seed=1)).keyframes
    b = plan_keyframes(64, Settings(keyframe_strategy="random", seed=1)).keyframes
    c = plan_keyframes(64, Settings(keyframe_strategy="random", seed=2)).keyframes
    assert a == b and a != c
    assert a[0] == 0 and a[-1] == 63
    assert all(len([k for k in a if s <= k < s + 8]) >= 1 for s in range(0, 64, 8))


def test_attention_stays_bounded_on_long_clips():
    s = Settings()
    for n in (400, 1200, 5000):
        plan = plan_keyframes(n, s)
        covered = sorted(q for qs, _ in plan.attention_groups for q in qs)
        assert covered == list(range(len(plan.keyframes)))
        assert max(len(qs) for qs, _ in plan.attention_groups) <= s.keyframe_window
        widest = max(len(keys) for _, keys in plan.attention_groups)
        assert widest <= s.keyframe_window + 1 + s.keyframe_anchors
        anchors, _ = plan.attention_groups[0]
        assert len(anchors) == s.keyframe_anchors and set(anchors) <= set(plan.spine)
        assert plan.spine == tuple(sorted(set(range(0, len(plan.keyframes), 8)) | {len(plan.keyframes) - 1}))
        for qs, keys in plan.attention_groups[1:]:
            assert set(anchors) <= set(keys)
            if len(qs) == 1 and qs[0] in plan.spine:  # a spine keyframe: itself and the anchors
                assert set(keys) == set(qs) | set(anchors)
            else:  # a segment: itself, the spine keyframes on either side, the anchors; no other
                before = max(p for p in plan.spine if p < qs[0])
                after = min(p for p in plan.spine if p > qs[-1])
                assert set(keys) == set(qs) | {before, after} | set(anchors)
                assert all(before < q < after for q in qs)


def test_every_segment_boundary_is_seen_from_both_sides():
    plan = plan_keyframes(300, Settings())
    segments = [(qs, keys) for qs, keys in plan.attention_groups[1:] if len(qs) > 1]
    for (_, left), (_, right) in zip(segments, segments[1:]):
        assert set(left) & set(right) - set(plan.attention_groups[0][0])  # one spine keyframe in common


def test_keys_come_only_from_the_same_or_an_earlier_group():
    plan = plan_keyframes(1200, Settings(keyframe_interval=4))
    done: set[int] = set()
    for queries, keys in plan.attention_groups:
        done |= set(queries)
        assert set(keys) <= done


def test_short_clips_attend_to_all_keyframes():
    plan = plan_keyframes(58, Settings())  # 0, 8, ..., 56, 57: more than a window of 8
    assert plan.attention_groups == (((0, 8), (0, 8)), ((1, 2, 3, 4, 5, 6, 7), tuple(range(9))))
    assert plan.spine == (0, 8)
    plan = plan_keyframes(57, Settings())  # 0, 8, ..., 56: one window
    assert plan.attention_groups == ((tuple(range(8)), tuple(range(8))),) and plan.spine == ()


def test_calls_hold_one_group_or_one_batch_and_release_each_keyframe_once():
    plan = plan_keyframes(300, Settings())
    calls = plan.calls(8)
    kf = set(plan.keyframes)
    assert sorted(f for c in calls for f in c.frames) == list(range(300))
    for c in calls:
        assert len(c.groups) == 1 and set(c.frames) <= kf or not c.groups and len(c.frames) <= 8
    released = [p for c in calls for p in c.release]
    assert sorted(released) == list(range(len(plan.keyframes)))
    # a frame's keyframes are released only after it was denoised
    when = {p: n for n, c in enumerate(calls) for p in c.release}
    for n, c in enumerate(calls):
        for f in c.frames if not c.groups else ():
            assert when[int(plan.past[f])] >= n and when[int(plan.future[f])] >= n
    # what is held at once stays flat: at most a few groups' keyframes
    held, most = set(), 0
    for c in calls:
        held |= set(plan.positions(c))
        most = max(most, len(held))
        held -= set(c.release)
    assert most <= 3 * 8 + 2


def test_anchors_may_not_exceed_the_window():
    with pytest.raises(UserError, match="keyframe_anchors"):
        plan_keyframes(100, Settings(keyframe_window=2, keyframe_anchors=3))


def test_bad_explicit_keyframes():
    with pytest.raises(UserError, match="keyframes must lie within"):
        plan_keyframes(10, Settings(keyframes=(0, 10)))
