"""`ipfacediff eval` lists as clips exactly the files `read_frames` reads (one extension list)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import UserError
from engine.io import MEDIA_EXTS, read_frames, write_frames
from engine.metrics.evaluate import list_clips


def test_eval_lists_only_clips_read_frames_can_read(tmp_path):
    write_frames([np.full((8, 8, 3), 90, np.uint8)], tmp_path / "shot_a", fmt="png")
    (tmp_path / "still.png").write_bytes((tmp_path / "shot_a" / "frame_000000.png").read_bytes())
    for name in ("scan.bmp", "camera.mxf", "notes.txt", "photo.webp"):
        (tmp_path / name).write_bytes(b"not decoded here")
    clips = list_clips(tmp_path)
    assert sorted(clips) == ["shot_a", "still"]
    for path in clips.values():
        assert len(read_frames(path).frames) == 1
    for name in ("scan.bmp", "camera.mxf", "photo.webp"):
        assert (tmp_path / name).suffix not in MEDIA_EXTS
        with pytest.raises(UserError, match="unsupported extension"):
            read_frames(tmp_path / name)
