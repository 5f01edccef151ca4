"""Output names keep the source's naming and padding (`shot.1003.exr` -> `shot_edit.1003.exr`),
or follow a `--name` pattern (issue 15 item 4)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import UserError
from engine.io import frame_names, read_frames, write_frames
from engine.io.sequence import edited_name

FRAME = np.zeros((4, 4, 3), np.uint8)


def _touch_sequence(folder, names):
    write_frames([FRAME], folder / "tmp", fmt="png")
    data = next((folder / "tmp").iterdir()).read_bytes()
    for name in names:
        (folder / name).write_bytes(data)
    return folder


@pytest.mark.parametrize(("files", "naming", "first_out"), [
    (["shot.1003.png", "shot.1004.png"], "shot.%04d", "shot_edit.1003.png"),
    (["plate_0008.png", "plate_0009.png", "plate_0010.png"], "plate_%04d", "plate_edit_0008.png"),
    (["8.png", "9.png", "10.png"], "%d", "edit.8.png"),
    (["take-07.png", "take-08.png"], "take-%02d", "take_edit-07.png"),
])
def test_a_sequence_is_written_back_with_its_own_naming_and_padding(tmp_path, files, naming, first_out):
    clip = read_frames(_touch_sequence(tmp_path, files))
    assert clip.naming == naming
    paths = write_frames(clip, tmp_path / "out", start=clip.first, name=edited_name(clip.naming))
    assert paths[0].name == first_out and len(paths) == len(files)
    assert read_frames(tmp_path / "out").first == clip.first


def test_a_printf_pattern_source_names_the_output_after_its_pattern(tmp_path):
    _touch_sequence(tmp_path, ["sc010_comp_v3_001001.png", "sc010_comp_v3_001002.png"])
    clip = read_frames(tmp_path / "sc010_comp_v3_%06d.png")
    assert edited_name(clip.naming) == "sc010_comp_v3_edit_%06d"


def test_stills_and_videos_keep_the_default_name(tmp_path):
    still = _touch_sequence(tmp_path, ["portrait.png"]) / "portrait.png"
    assert read_frames(still).naming is None and edited_name(None) == "frame_%06d"
    write_frames([FRAME] * 2, tmp_path / "v", video=tmp_path / "v.mp4")
    assert read_frames(tmp_path / "v.mp4").naming is None


def test_a_name_pattern_gives_the_file_names_and_bad_ones_are_one_sentence():
    assert frame_names(2, start=1001, fmt="exr", name="comp_v2.%04d.exr") == ["comp_v2.1001.exr", "comp_v2.1002.exr"]
    assert frame_names(1, start=7, fmt="png", name="a%%_%03d") == ["a%_007.png"]
    for bad in ("shot", "shot.%04d.%04d", "out/%04d", "%s.%04d"):
        with pytest.raises(UserError, match="must be a file name with one frame-number field"):
            frame_names(1, name=bad)
