"""Detection on every frame, tracking through misses, smooth crops, subject choice."""

from __future__ import annotations

import numpy as np
import pytest

from engine.faces import prepare, samples
from engine.faces.samples import Actor
from engine.settings import Settings


def _centre_error(plan, truth, actor=0):
    """Distance (in face sizes) between each crop's face centre and where the face was put."""
    errs = []
    for i, face in zip(plan.crop_frames, plan.crop_faces):
        t = truth[i][actor]
        errs.append(np.hypot(*(face.centre - np.array(t["centre"]))) / t["size"])
    return np.array(errs)


def test_face_found_in_every_frame_of_a_moving_clip(moving_clip, moving_plan):
    frames, truth = moving_clip
    assert frames[0].shape == (1080, 1920, 3)
    assert moving_plan.status == ["face"] * len(frames)
    assert moving_plan.crop_frames == list(range(len(frames)))
    assert _centre_error(moving_plan, truth).max() < 0.15
    assert all(c.shape == (512, 512, 3) and c.dtype == np.float32 for c in moving_plan.crops)
    assert 0.0 <= min(c.min() for c in moving_plan.crops) and max(c.max() for c in moving_plan.crops) <= 1.0


@pytest.mark.parametrize("name", [n for n in samples.available() if n != "astronaut"])
def test_other_real_faces_are_found_in_every_frame(name, detector):
    frames, truth = samples.clip([Actor(name, (1100, 500), 260, rotate=8, zoom=0.1, shift=(40, 20), period=6)],
                                 6, brightness=0.15, blur={2: 11}, jpeg=60)
    plan = prepare(frames, Settings(), detector=detector)
    assert plan.status == ["face"] * len(frames), plan.status
    assert _centre_error(plan, truth).max() < 0.15


def test_static_clip_crop_centre_moves_at_most_one_pixel(detector):
    # a still head, but sensor noise, JPEG and brightness flicker make raw detections jitter
    frames, _ = samples.clip([Actor("astronaut", (900, 540), 300)], 16, brightness=0.1, jpeg=70, noise=3)
    plan = prepare(frames, Settings(), detector=detector)
    boxes = np.array(plan.crop_boxes)
    raw = np.array([f.kps[:2].mean(axis=0) for f in plan.crop_faces])
    assert np.abs(np.diff(raw, axis=0)).max() > 1.0  # the detections do jitter ...
    assert np.abs(np.diff(boxes[:, :2], axis=0)).max() <= 1.0  # ... the crop does not
    assert np.abs(np.diff(boxes[:, 2])).max() <= 0.005 * boxes[:, 2].mean()  # no zoom pumping either


def test_fast_moves_are_followed_without_lag(moving_plan):
    from engine.faces.crop import raw_box

    boxes = np.array(moving_plan.crop_boxes)
    raw = np.array([raw_box(f) for f in moving_plan.crop_faces])
    lag = np.hypot(*(boxes[:, :2] - raw[:, :2]).T) / raw[:, 2]
    assert lag.max() < 0.03  # within 3 % of the crop side of the raw detection, every frame


def test_one_track_through_three_occluded_frames(detector):
    frames, truth = samples.clip([Actor("astronaut", (900, 540), 300, shift=(40, 0), period=20)], 12, jpeg=85)
    for i in (5, 6, 7):  # an object passes in front of the face: no detection there
        (cx, cy), size = truth[i][0]["centre"], truth[i][0]["size"]
        frames[i] = frames[i].copy()
        frames[i][int(cy - size):int(cy + size), int(cx - size):int(cx + size)] = 90
    plan = prepare(frames, Settings(face_max_missed=5), detector=detector)
    assert len(plan.tracks) == 1 and plan.subjects == [0]
    assert plan.status == ["face"] * 5 + ["tracked"] * 3 + ["face"] * 4
    assert plan.crop_frames == list(range(12))
    # the interpolated faces stay on the face's path
    assert _centre_error(plan, truth)[5:8].max() < 0.1


def test_subject_choice_with_two_faces(two_faces, detector, tmp_path):
    import cv2

    largest = prepare(two_faces, Settings(), detector=detector)
    assert len(largest.tracks) == 2 and [t["id"] for t in largest.tracks] == [0, 1]
    assert largest.tracks[0]["x"] < largest.tracks[1]["x"]  # numbered from the left
    assert largest.subjects == [0]  # the astronaut is larger
    right = prepare(two_faces, Settings(face_subject="1"), detector=detector)
    assert right.subjects == [1] and abs(right.crop_boxes[0][0] - 1420) < 60
    both = prepare(two_faces, Settings(face_subject="all"), detector=detector)
    assert both.subjects == [0, 1] and len(both.clips()) == 2 and len(both.crops) == 2 * len(two_faces)
    # reference: a different picture of Grace Hopper (mirrored, cropped, rescaled)
    ref = cv2.resize(samples.photo("grace_hopper")[40:520, 30:500, :][:, ::-1], (300, 306))
    path = tmp_path / "ref.png"
    cv2.imwrite(str(path), cv2.cvtColor(ref, cv2.COLOR_RGB2BGR))
    chosen = prepare(two_faces, Settings(face_reference=str(path)), detector=detector)
    assert chosen.subjects == [1]
    with pytest.raises(Exception, match="only 2 face track"):
        prepare(two_faces, Settings(face_subject="5"), detector=detector)
