"""Paste-back: exact where nothing was edited, bit-identical outside the mask, every bit
depth kept; full mode; bad frames get a status, never a crash."""

from __future__ import annotations

import numpy as np
import pytest

from engine.faces import paste, prepare, samples
from engine.faces.paste import MASK_FLOOR
from engine.faces.samples import Actor
from engine.settings import Settings

from tests.faces.conftest import psnr


def _as(frames8: list[np.ndarray], dtype) -> list[np.ndarray]:
    if dtype == np.uint8:
        return frames8
    if dtype == np.uint16:
        return [f.astype(np.uint16) * 257 + np.uint16(3) for f in frames8]  # use the low bits too
    return [f.astype(np.float32) / 255.0 for f in frames8]


def _peak(dtype) -> float:
    return {np.uint8: 255.0, np.uint16: 65535.0}.get(dtype, 1.0)


@pytest.fixture(scope="module")
def short_clip():
    return samples.clip([Actor("astronaut", (760, 520), 300, rotate=6, zoom=0.1, shift=(30, 20), period=4)], 4,
                        jpeg=85)[0]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_unedited_paste_reproduces_the_frame(short_clip, detector, dtype):
    frames = _as(short_clip, dtype)
    for mode in ("delta", "replace"):
        s = Settings(face_paste=mode)
        plan = prepare(frames, s, detector=detector)
        assert plan.status == ["face"] * 4
        out = paste(frames, plan.crops, plan, s)
        for k, (o, f) in enumerate(zip(out, frames)):
            assert o.dtype == f.dtype and o.shape == f.shape
            inside = _mask_in_frame(plan, k, s)
            assert np.array_equal(o[~inside], f[~inside])  # bit-identical outside the mask
            if mode == "delta":
                assert np.array_equal(o, f)  # the edit is pasted as a change: none, so exact
            else:
                assert psnr(o[inside], f[inside], _peak(dtype)) >= 45.0


def _mask_in_frame(plan, k, s):
    """Where the paste may write in frame k: run paste on a marker edit (all ones)."""
    frames = [np.zeros((1080, 1920, 3), np.float32)] * plan.n_frames
    marker = [np.ones_like(c) for c in plan.crops]
    out = paste(frames, marker, plan, s.replace(face_paste="replace"))
    return out[k].max(axis=2) > 0


def test_edit_changes_only_inside_the_mask_and_faceless_frames_pass(short_clip, detector):
    frames = list(short_clip) + [np.full((1080, 1920, 3), 77, np.uint8)]  # last frame: no face
    s = Settings(face_feather=0.1)
    plan = prepare(frames, s, detector=detector)
    assert plan.status == ["face"] * 4 + ["no_face"]
    edited = [1.0 - c for c in plan.crops]  # a drastic edit
    out = paste(frames, edited, plan, s)
    assert np.array_equal(out[4], frames[4])
    for k in range(4):
        changed = np.any(out[k] != frames[k], axis=2)
        assert changed.sum() > 50_000  # the face area really changed
        inside = _mask_in_frame(plan, k, s)
        assert not np.any(changed & ~inside)
        # the mask is soft: its edge band blends, so no hard seam
        box = plan.crop_boxes[k]
        assert changed.sum() < (box[2] ** 2)  # less than the crop square


def test_hull_and_box_masks_and_colour_match(short_clip, detector):
    base = Settings()
    plan = prepare(short_clip, base, detector=detector)
    brighter = [np.clip(c + 0.15, 0, 1) for c in plan.crops]
    areas = {}
    for kind in ("hull", "ellipse", "box"):
        s = base.replace(face_mask=kind)
        areas[kind] = _mask_in_frame(plan, 0, s).sum()
        out = paste(short_clip, plan.crops, plan, s.replace(face_paste="delta"))
        assert np.array_equal(out[0], short_clip[0])
    assert areas["hull"] < areas["ellipse"] < areas["box"]
    plain = paste(short_clip, brighter, plan, base)
    matched = paste(short_clip, brighter, plan, base.replace(face_color_match=1.0))
    d_plain = np.abs(plain[0].astype(int) - short_clip[0]).sum()
    d_matched = np.abs(matched[0].astype(int) - short_clip[0]).sum()
    assert d_matched < 0.3 * d_plain  # a uniform brightening is taken back by the seam match


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_full_mode_round_trip(short_clip, dtype):
    frames = [f[:1079, :1919] for f in _as(short_clip[:2], dtype)]  # odd size
    s = Settings(face_mode="full")
    plan = prepare(frames, s)
    assert plan.mode == "full" and plan.status == ["full", "full"]
    h, w = plan.size
    assert (h % 64, w % 64) == (0, 0) and max(h, w) == 512 and plan.crops[0].shape == (h, w, 3)
    out = paste(frames, plan.crops, plan, s)
    assert all(np.array_equal(o, f) for o, f in zip(out, frames))
    out = paste(frames, plan.crops, plan, s.replace(face_paste="replace"))
    assert all(o.dtype == f.dtype and o.shape == f.shape for o, f in zip(out, frames))
    assert psnr(out[0], frames[0], _peak(dtype)) > 25  # downscaled to 512: a soft copy


def test_auto_and_crop_mode_pass_a_clip_without_a_face_through_and_only_full_mode_edits_it_whole():
    frames = [np.full((360, 640, 3), v, np.uint8) for v in (40, 80, 120)]
    for mode in ("auto", "crop"):
        plan = prepare(frames, Settings(face_mode=mode))
        assert plan.mode == "crop" and plan.crops == [] and plan.status == ["no_face"] * 3
        assert all(np.array_equal(o, f) for o, f in zip(paste(frames, [], plan), frames))
    full = prepare(frames, Settings(face_mode="full"))
    assert full.mode == "full" and full.status == ["full"] * 3 and len(full.crops) == 3


def test_bad_frames_get_a_status_never_a_crash(detector):
    face = samples.clip([Actor("astronaut", (480, 300), 200)], 1, size=(600, 960))[0][0]
    gray = (face @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    rgba = np.dstack([face, np.full(face.shape[:2], 200, np.uint8)])
    odd = face[:599, :957]
    tiny_face = samples.clip([Actor("astronaut", (480, 300), 26)], 1, size=(600, 960))[0][0]
    nan = face.astype(np.float32) / 255
    nan[:10] = np.nan
    frames = [face, gray, rgba, odd, face.astype(np.uint16) * 257, face.astype(np.float32) / 255, nan,
              gray[:, :, None], tiny_face, np.zeros((5, 7, 3), np.uint8), np.zeros((600, 960, 2), np.uint8),
              None, "frame", np.zeros((600, 960, 3), np.complex64)]
    plan = prepare(frames, Settings(face_mode="crop", face_smoothing=0), detector=detector)
    assert plan.status == ["face"] * 8 + ["too_small"] + ["invalid"] * 5, plan.status
    assert "gray" in plan.notes[1] and "alpha" in plan.notes[2] and "non-finite" in plan.notes[6]
    assert "smaller than" in plan.notes[8] and "too small" in plan.notes[9] and "shape" in plan.notes[10]
    edited = [1.0 - c for c in plan.crops]
    out = paste(frames, edited, plan)
    for k, (o, f) in enumerate(zip(out, frames)):
        if plan.status[k] == "face":
            o, f = np.asarray(o), np.asarray(f)
            assert o.shape == f.shape and o.dtype == f.dtype and not np.array_equal(o, f)
        elif isinstance(f, np.ndarray):
            assert np.array_equal(o, f, equal_nan=f.dtype.kind == "f")
        else:
            assert o is f
    assert np.array_equal(out[2][:, :, 3], rgba[:, :, 3])  # alpha untouched


def test_an_unusable_frame_inside_a_track_is_skipped(detector):
    frames, _ = samples.clip([Actor("astronaut", (480, 300), 200, shift=(10, 0), period=8)], 8, size=(600, 960))
    frames[3] = np.zeros((600, 960, 2), np.uint8)  # a broken frame in the middle of the shot
    plan = prepare(frames, Settings(), detector=detector)
    assert plan.status == ["face"] * 3 + ["invalid"] + ["face"] * 4 and 3 not in plan.crop_frames
    out = paste(frames, plan.crops, plan)
    assert np.array_equal(out[3], frames[3])
