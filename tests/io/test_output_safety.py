"""What `write_frames` and `check_output` promise about a user's files: nothing already there is
deleted, replaced without `overwrite`, or written over when it is an input; outputs get the
process umask; a bad or failed video leaves nothing."""

from __future__ import annotations

import os
import stat
import sys

import numpy as np
import pytest

from engine.errors import UserError
from engine.io import check_output, read_frames, write_frames
from engine.io.video import write_video


def _frames(count, seed=0, size=(12, 16)):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(count)]


def _contents(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_chunks_of_one_shot_written_into_one_folder_all_survive(tmp_path):
    out = tmp_path / "chunks"
    first, second = _frames(2, seed=1), _frames(2, seed=2)
    write_frames(first, out, start=1001)
    (out / "notes.txt").write_text("keep me")
    write_frames(second, out, start=1003)
    assert sorted(p.name for p in out.iterdir()) == [
        "frame_001001.png", "frame_001002.png", "frame_001003.png", "frame_001004.png", "notes.txt"]
    clip = read_frames(out / "frame_%06d.png")
    assert clip.first == 1001 and all(np.array_equal(a, b) for a, b in zip(clip.frames, first + second))
    assert (out / "notes.txt").read_text() == "keep me"


def test_an_existing_output_frame_is_refused_without_overwrite(tmp_path):
    out = tmp_path / "out"
    write_frames(_frames(3, seed=1), out, start=0)
    before = _contents(out)
    with pytest.raises(UserError, match=r"frame_000001\.png already exists; pass --overwrite"):
        write_frames(_frames(3, seed=2), out, start=1)
    assert _contents(out) == before  # nothing written, not even frame_000003


def test_overwrite_replaces_only_the_frames_of_this_run(tmp_path):
    out = tmp_path / "out"
    old, new = _frames(3, seed=1), _frames(3, seed=2)
    write_frames(old, out, start=0)
    write_frames(new, out, start=1, overwrite=True)
    back = read_frames(out).frames
    assert len(back) == 4 and np.array_equal(back[0], old[0])
    assert all(np.array_equal(a, b) for a, b in zip(back[1:], new))
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]


def test_an_existing_video_is_refused_before_any_frame_is_written(tmp_path):
    movie = tmp_path / "movie.mp4"
    movie.write_bytes(b"the editor's earlier cut")
    with pytest.raises(UserError, match="movie.mp4 already exists; pass --overwrite"):
        write_frames(_frames(2), tmp_path / "out", video=movie)
    assert not (tmp_path / "out").exists() and movie.read_bytes() == b"the editor's earlier cut"
    write_frames(_frames(2), tmp_path / "out", video=movie, overwrite=True)
    assert read_frames(movie).frames[0].shape == (12, 16, 3)


@pytest.mark.parametrize("umask, folder_mode, file_mode", [(0o022, 0o755, 0o644), (0o027, 0o750, 0o640)],
                         ids=["umask022", "umask027"])
def test_outputs_are_created_with_the_process_umask(tmp_path, umask, folder_mode, file_mode):
    old = os.umask(umask)
    try:
        paths = write_frames(_frames(2), tmp_path / "new" / "out", video=tmp_path / "clips" / "movie.mp4")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "new") == folder_mode and _mode(tmp_path / "new" / "out") == folder_mode
    assert _mode(tmp_path / "clips") == folder_mode
    assert [_mode(p) for p in paths] == [file_mode, file_mode]
    assert _mode(tmp_path / "clips" / "movie.mp4") == file_mode


@pytest.mark.parametrize("name", ["prev.txt", "prev.webm", "prev"])
def test_a_bad_video_extension_is_refused_before_anything_is_written(tmp_path, name):
    with pytest.raises(UserError, match=r"must end in \.mp4, \.mov, \.mkv"):
        write_frames(_frames(2), tmp_path / "out", video=tmp_path / name)
    assert sorted(tmp_path.iterdir()) == []


def test_a_failed_ffmpeg_run_raises_and_leaves_no_file(tmp_path):
    too_wide = _frames(2, size=(2, 20000))  # beyond H.264's width limit: ffmpeg exits non-zero
    with pytest.raises(OSError, match="ffmpeg could not write x.mp4"):
        write_video(tmp_path / "x.mp4", too_wide, 24.0)
    with pytest.raises(UserError, match="ffmpeg could not write"):
        write_frames(too_wide, tmp_path / "out", video=tmp_path / "movie.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.mp4"]  # write_video's own target only


@pytest.mark.parametrize("where", ["same", "parent", "symlink"])
def test_an_output_folder_that_is_or_contains_the_input_is_refused_even_with_overwrite(tmp_path, where):
    shot = tmp_path / "shot"
    write_frames(_frames(2), shot, start=1)
    out = {"same": shot, "parent": tmp_path, "symlink": tmp_path / "link"}[where]
    if where == "symlink":
        out.symlink_to(shot)
    with pytest.raises(UserError, match="is or contains the input"):
        check_output(out, ["frame_000001.png"], overwrite=True, inputs=[shot])


def test_no_output_file_may_be_an_input_file(tmp_path):
    clip = tmp_path / "clip.mp4"
    write_frames(_frames(2), tmp_path / "frames", video=clip)
    with pytest.raises(UserError, match="clip.mp4 is part of the input"):
        check_output(tmp_path / "out", ["frame_000000.png"], video=clip, overwrite=True, inputs=[clip])
    with pytest.raises(UserError, match="is part of the input"):
        check_output(tmp_path / "out", ["frame_000000.png"], files=[tmp_path / "frames" / "frame_000001.png"],
                     overwrite=True, inputs=[tmp_path / "frames"])


def test_an_output_folder_that_cannot_be_made_or_written_is_refused(tmp_path):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(UserError, match="a_file exists and is not a folder"):
        check_output(tmp_path / "a_file", ["frame_000000.png"])
    with pytest.raises(UserError, match="a_file is a file, so the folder .*sub cannot be created"):
        check_output(tmp_path / "a_file" / "sub", ["frame_000000.png"])
    if sys.platform == "linux":  # /proc refuses new files even to root
        with pytest.raises(UserError, match="/proc is not writable"):
            check_output("/proc/ipfacediff-out", ["frame_000000.png"])
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(UserError, match="locked is not writable"):
            check_output(locked / "out", ["frame_000000.png"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"] + (["locked"] if os.geteuid() != 0 else [])


def test_two_outputs_with_one_name_are_refused(tmp_path):
    with pytest.raises(UserError, match="named as two different outputs"):
        check_output(tmp_path / "out", ["frame_000000.png"], video=tmp_path / "a.mp4", files=[tmp_path / "a.mp4"])
