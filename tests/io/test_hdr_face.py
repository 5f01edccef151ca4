"""A scene-linear, HDR, half-float EXR of a real face: found and edited in the model's sRGB,
written back as half in scene-linear, highlights above 1.0 and everything outside the face
bit-exact."""

from __future__ import annotations

import numpy as np
import pytest

from engine.faces import samples
from engine.io import read_frames, write_frames
from engine.io.colour import ModelFrames
from engine.io.exr import write_exr
from engine.settings import Settings
from tests.io.test_colour import srgb_decode

LAMP = (slice(10, 40), slice(10, 60))  # outside the face


def _hdr_shot(folder):
    """Two frames: the astronaut in scene-linear Rec.709, a lamp at 4-6 outside the face and a
    specular highlight at 1.8-2.5 on the face; half float, numbered 1001-1002."""
    linear = srgb_decode(samples.photo("astronaut") / 255.0).astype(np.float32)
    linear[LAMP] = [6.0, 5.0, 4.0]
    (cx, cy), _ = samples.FACES["astronaut"]
    linear[int(cy) - 3:int(cy) + 3, int(cx) - 3:int(cx) + 3] = [2.5, 2.0, 1.8]
    folder.mkdir()
    frames = [linear.astype(np.float16), np.roll(linear, 2, axis=1).astype(np.float16)]
    for i, frame in enumerate(frames):
        write_exr(folder / f"shot.{1001 + i}.exr", frame)
    return frames


@pytest.mark.slow
def test_an_hdr_exr_face_is_edited_in_srgb_and_comes_back_half_with_highlights_and_surroundings_exact(
        tiny_editor, tmp_path):
    source = _hdr_shot(tmp_path / "in")
    clip = read_frames(tmp_path / "in")
    working = ModelFrames.prepare(clip, fmt="exr")
    assert float(np.median(working.frames[0])) > 2 * float(np.median(clip.frames[0]))  # sRGB-encoded, not linear
    result = tiny_editor.edit(working.frames, "add glasses", Settings(resolution=64, steps=2))
    assert result.stats["faces"]["status_counts"] == {"face": 2}
    write_frames(working.restore(result.frames), tmp_path / "out", start=clip.first, fmt="exr")
    back = read_frames(tmp_path / "out")
    assert back.source_dtype == "float16" and back.first == 1001
    boxes = result.stats["faces"]["crop_boxes"]
    for out, src, box in zip(back.frames, source, boxes):
        changed = (out.astype(np.float16) != src).any(axis=-1)
        highlights = (src > 1).any(axis=-1)
        assert highlights.sum() >= 30 * 48 + 36  # the lamp (one frame shifted) and the specular
        assert not changed[highlights].any()
        ys, xs = np.nonzero(changed)
        assert len(xs) > 100, "the face was edited"
        half = box["side"] / 2
        assert xs.min() >= box["cx"] - half and xs.max() <= box["cx"] + half
        assert ys.min() >= box["cy"] - half and ys.max() <= box["cy"] + half
