"""Frame I/O: round trips per format, ranges, probing, error messages and atomic writes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tifffile

import engine.io.images
from engine.errors import UserError
from engine.io import Clip, probe, read_frames, write_frames

H, W = 12, 16


def _frames(dtype, count=3, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    shape = (H, W, channels) if channels > 1 else (H, W)
    if np.dtype(dtype).kind == "u":
        return [rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True, dtype=dtype) for _ in range(count)]
    return [(rng.random(shape, dtype=np.float32) * 4 - 1).astype(dtype) for _ in range(count)]


def _assert_same(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.dtype == e.dtype and a.shape == e.shape
        np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize(
    ("fmt", "dtype"),
    [("png", np.uint8), ("png", np.uint16), ("tif", np.uint8), ("tif", np.uint16), ("tif", np.float32)],
)
def test_round_trip_is_bit_exact(tmp_path, fmt, dtype):
    frames = _frames(dtype)
    paths = write_frames(frames, tmp_path / "out", start=1001, fmt=fmt)
    assert [p.name for p in paths] == [f"frame_{n:06d}.{fmt}" for n in (1001, 1002, 1003)]
    clip = read_frames(tmp_path / "out")
    assert clip.first == 1001 and clip.last == 1003 and clip.alpha is None and clip.fps is None
    assert clip.source_dtype == np.dtype(dtype).name
    _assert_same(clip.frames, frames)


def test_exr_half_is_exact_and_widened_to_float32(tmp_path):
    frames = _frames(np.float16)
    write_frames(frames, tmp_path / "out", fmt="exr")
    clip = read_frames(tmp_path / "out")
    assert clip.source_dtype == "float16" and clip.bit_depth == 16
    _assert_same(clip.frames, [f.astype(np.float32) for f in frames])


def test_exr_float_is_exact(tmp_path):
    frames = _frames(np.float32)
    write_frames(frames, tmp_path / "out", fmt="exr")
    clip = read_frames(tmp_path / "out")
    assert clip.source_dtype == "float32" and clip.bit_depth == 32
    _assert_same(clip.frames, frames)


def test_format_conversions(tmp_path):
    floats = [np.linspace(-0.5, 1.5, H * W * 3, dtype=np.float32).reshape(H, W, 3)]
    write_frames(floats, tmp_path / "png", fmt="png")
    png = read_frames(tmp_path / "png").frames[0]
    assert png.dtype == np.uint16 and png.min() == 0 and png.max() == 65535
    ints = _frames(np.uint8, count=1)
    write_frames(ints, tmp_path / "exr", fmt="exr")
    exr = read_frames(tmp_path / "exr").frames[0]
    np.testing.assert_allclose(exr, ints[0] / np.float32(255), rtol=1e-6)


def test_video_round_trip(tmp_path):
    frames = [np.full((H * 2, W * 2, 3), 40 * i + 20, np.uint8) for i in range(5)]
    write_frames(frames, tmp_path / "out", video=tmp_path / "movie.mp4", fps=25.0)
    info = probe(tmp_path / "movie.mp4")
    assert (info.frame_count, info.width, info.height, info.fps, info.first) == (5, W * 2, H * 2, 25.0, 0)
    clip = read_frames(tmp_path / "movie.mp4")
    assert len(clip) == 5 and clip.fps == 25.0 and clip.dtype == np.uint8
    for got, want in zip(clip.frames, frames):
        assert got.shape == want.shape
        assert abs(float(got.mean()) - float(want.mean())) < 3
    part = read_frames(tmp_path / "movie.mp4", (1, 3))
    assert part.first == 1 and len(part) == 3
    assert abs(float(part.frames[0].mean()) - 60) < 3
    with pytest.raises(UserError, match=r"outside the available frames 0-4"):
        read_frames(tmp_path / "movie.mp4", (3, 9))


def test_sequence_ranges_and_patterns(tmp_path):
    frames = _frames(np.uint8, count=10)
    write_frames(frames, tmp_path / "shot", start=1001)
    clip = read_frames(tmp_path / "shot", frame_range=(1003, 1005))
    assert clip.first == 1003 and len(clip) == 3
    _assert_same(clip.frames, frames[2:5])
    single = read_frames(str(tmp_path / "shot" / "frame_%06d.png"), (1010, 1010))
    assert single.first == 1010 and len(single) == 1
    _assert_same(single.frames, frames[9:])
    info = probe(tmp_path / "shot" / "frame_%06d.png")
    assert (info.frame_count, info.first, info.last, info.width, info.height) == (10, 1001, 1010, W, H)
    assert info.dtype == "uint8" and info.fps is None and not info.has_alpha


@pytest.mark.parametrize("frame_range", [(995, 1002), (1005, 1011), (1, 3)])
def test_range_out_of_bounds_names_available_range(tmp_path, frame_range):
    write_frames(_frames(np.uint8, count=10), tmp_path / "shot", start=1001)
    with pytest.raises(UserError, match=r"outside the available frames 1001-1010"):
        read_frames(tmp_path / "shot", frame_range)


def test_bad_range_and_gaps(tmp_path):
    write_frames(_frames(np.uint8, count=5), tmp_path / "shot", start=1001)
    with pytest.raises(UserError, match="empty"):
        read_frames(tmp_path / "shot", (1004, 1002))
    (tmp_path / "shot" / "frame_001003.png").unlink()
    with pytest.raises(UserError, match="Frame 1003 is missing"):
        read_frames(tmp_path / "shot")
    assert len(read_frames(tmp_path / "shot", (1004, 1005))) == 2


def test_mixed_sizes_are_rejected(tmp_path):
    write_frames(_frames(np.uint8, count=3), tmp_path / "shot", start=1)
    cv2.imwrite(str(tmp_path / "shot" / "frame_000004.png"), np.zeros((H + 2, W, 3), np.uint8))
    with pytest.raises(UserError, match=r"frame_000004\.png is 16x14 .* same size"):
        read_frames(tmp_path / "shot")
    with pytest.raises(UserError, match="same size"):
        write_frames([np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8)], tmp_path / "x")


def test_missing_inputs(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_frames(tmp_path / "nope.mp4")
    with pytest.raises(UserError, match="does not exist"):
        read_frames(tmp_path / "nope" / "frame_%06d.exr")
    with pytest.raises(UserError, match="No files match"):
        read_frames(tmp_path / "frame_%06d.exr")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no images"):
        read_frames(tmp_path / "empty")


@pytest.mark.parametrize("name", ["bad.png", "bad.tif", "bad.exr", "bad.mp4", "empty.png"])
def test_corrupt_files(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"" if name.startswith("empty") else b"\x89PNG\r\n\x1a\n not really an image" * 8)
    with pytest.raises(UserError, match="corrupt"):
        read_frames(path)
    with pytest.raises(UserError, match="corrupt"):
        probe(path)


def test_unsupported_inputs(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(UserError, match="unsupported extension"):
        read_frames(tmp_path / "notes.txt")
    with pytest.raises(UserError, match="not supported"):
        write_frames(_frames(np.uint8), tmp_path / "out", fmt="jpg")
    with pytest.raises(UserError, match="cannot be written"):
        write_frames([np.zeros((4, 4, 3), np.int32)], tmp_path / "out")
    with pytest.raises(UserError, match="no frames"):
        write_frames([], tmp_path / "out")


def test_folder_with_two_sequences_asks_for_a_pattern(tmp_path):
    write_frames(_frames(np.uint8, count=2), tmp_path / "shot")
    cv2.imwrite(str(tmp_path / "shot" / "matte_000000.png"), np.zeros((H, W), np.uint8))
    with pytest.raises(UserError, match="several image sequences"):
        read_frames(tmp_path / "shot")
    assert len(read_frames(tmp_path / "shot" / "matte_%06d.png")) == 1


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_grayscale_is_expanded_to_rgb(tmp_path, dtype):
    gray = _frames(dtype, count=1, channels=1)[0]
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    clip = read_frames(tmp_path / "gray.png")
    assert clip.first == 0 and clip.alpha is None
    assert clip.frames[0].shape == (H, W, 3) and clip.frames[0].dtype == dtype
    for c in range(3):
        np.testing.assert_array_equal(clip.frames[0][:, :, c], gray)


def test_rgba_png_splits_alpha_and_reorders_channels(tmp_path):
    rgba = _frames(np.uint8, count=1, channels=4)[0]
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba[:, :, [2, 1, 0, 3]])  # OpenCV writes BGRA
    clip = read_frames(tmp_path / "rgba.png")
    np.testing.assert_array_equal(clip.frames[0], rgba[:, :, :3])
    np.testing.assert_array_equal(clip.alpha[0], rgba[:, :, 3])
    assert probe(tmp_path / "rgba.png").has_alpha


@pytest.mark.parametrize(("fmt", "dtype"), [("png", np.uint16), ("tif", np.uint8), ("tif", np.float32), ("exr", np.float32)])
def test_clip_with_alpha_round_trips(tmp_path, fmt, dtype):
    rgba = _frames(dtype, count=2, channels=4)
    clip = Clip(frames=[f[:, :, :3].copy() for f in rgba], alpha=[f[:, :, 3].copy() for f in rgba])
    write_frames(clip, tmp_path / "out", fmt=fmt)
    back = read_frames(tmp_path / "out")
    _assert_same(back.frames, clip.frames)
    _assert_same(back.alpha, clip.alpha)


def test_planar_and_gray_tiff(tmp_path):
    rgb = _frames(np.uint16, count=1)[0]
    tifffile.imwrite(tmp_path / "planar.tif", np.moveaxis(rgb, -1, 0).copy(), photometric="rgb", planarconfig="separate")
    _assert_same(read_frames(tmp_path / "planar.tif").frames, [rgb])
    gray = _frames(np.float32, count=1, channels=1)[0]
    tifffile.imwrite(tmp_path / "gray.tif", gray)
    np.testing.assert_array_equal(read_frames(tmp_path / "gray.tif").frames[0], np.dstack([gray] * 3))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_lzw_tiff_falls_back_to_opencv(tmp_path, dtype):
    rgb = _frames(dtype, count=1)[0]
    cv2.imwrite(str(tmp_path / "lzw.tif"), rgb[:, :, ::-1])  # OpenCV writes LZW, which tifffile alone cannot decode
    _assert_same(read_frames(tmp_path / "lzw.tif").frames, [rgb])


def _temp_leftovers(parent):
    return [p.name for p in parent.rglob("*") if ".tmp-" in p.name]


@pytest.mark.parametrize("existing", [True, False])
def test_failed_write_leaves_out_dir_unchanged(tmp_path, monkeypatch, existing):
    out = tmp_path / "out"
    if existing:
        write_frames(_frames(np.uint8, count=4, seed=1), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()} if existing else None

    real_write = engine.io.images.write_image
    calls = []

    def failing_write(path, image):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_write(path, image)

    monkeypatch.setattr(engine.io.images, "write_image", failing_write)
    with pytest.raises(UserError, match="No space left"):
        write_frames(_frames(np.uint8, count=6, seed=2), out, start=100, video=tmp_path / "movie.mp4")
    assert len(calls) == 3
    if existing:
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    else:
        assert not out.exists()
    assert not (tmp_path / "movie.mp4").exists()
    assert _temp_leftovers(tmp_path) == []


def test_failed_video_leaves_everything_unchanged(tmp_path, monkeypatch):
    out = tmp_path / "out"
    write_frames(_frames(np.uint8, count=2, seed=1), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken_video(path, frames, fps):
        path.write_bytes(b"partial")
        raise OSError("ffmpeg died")

    monkeypatch.setattr("engine.io.video.write_video", broken_video)
    with pytest.raises(UserError, match="ffmpeg died"):
        write_frames(_frames(np.uint8, count=3, seed=2), out, start=2, video=tmp_path / "movie.mp4")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
