"""The integration contract the editor relies on: prepare → core edit on each subject's
crops → paste → qc, on a 1080p clip with the tiny random-weight model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.faces import paste, prepare
from engine.metrics.quality import qc
from engine.settings import Settings


@pytest.mark.slow
def test_prepare_edit_paste_qc_round(tiny_editor, moving_clip, detector, facenet):
    frames = [f.astype(np.uint16) * 257 for f in moving_clip[0][:4]]  # a 16-bit 1080p shot
    settings = Settings(resolution=64, steps=2, face_feather=0.1)
    plan = prepare(frames, settings, detector=detector)
    assert plan.status == ["face"] * 4 and plan.size == (64, 64)
    edited = []
    for clip in plan.clips():
        edited += tiny_editor.edit_crops(clip, "add glasses", settings.replace(resolution=None)).frames
    out = paste(frames, edited, plan, settings)
    assert all(o.dtype == np.uint16 and o.shape == f.shape for o, f in zip(out, frames))
    for o, f, box in zip(out, frames, plan.crop_boxes):
        changed = np.any(o != f, axis=2)
        ys, xs = np.nonzero(changed)
        assert changed.any() and abs(xs.mean() - box[0]) < 0.1 * box[2] and abs(ys.mean() - box[1]) < 0.2 * box[2]
        assert xs.min() >= box[0] - box[2] / 2 and xs.max() <= box[0] + box[2] / 2  # only inside the crop
    result = qc(frames, out, plan, embedder=facenet, settings=settings)
    assert len(result["identity_distance"]) == 4 and all(d is not None for d in result["identity_distance"])
    json.dumps(result)
