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
        widest = max(len(keys) for _, keys in plan.attention_groups)
        assert widest <= 3 * s.keyframe_window + s.keyframe_anchors
        # each query keyframe sees its immediate neighbours
        for qs, keys in plan.attention_groups:
            assert all(q - 1 in keys or q == 0 for q in qs)


def test_short_clips_attend_to_all_keyframes():
    plan = plan_keyframes(48, Settings())
    assert plan.attention_groups == ((tuple(range(7)), tuple(range(7))),)


def test_bad_explicit_keyframes():
    with pytest.raises(UserError, match="keyframes must lie within"):
        plan_keyframes(10, Settings(keyframes=(0, 10)))
