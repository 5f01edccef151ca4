"""Colour management (engine.io.colour): scene-linear frames reach the model as sRGB and come
back through the exact inverse; what the model cannot hold, or did not change, comes back as it was."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import UserError
from engine.io import Clip
from engine.io.colour import ModelFrames, output_dtype


def srgb_encode(linear):
    linear = np.asarray(linear, np.float64)
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * np.abs(linear) ** (1 / 2.4) - 0.055)


def srgb_decode(encoded):
    encoded = np.asarray(encoded, np.float64)
    return np.where(encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055) ** 2.4)


def half_clip(values: np.ndarray) -> Clip:
    """A one-frame half-float clip as read_frames returns it (widened to float32)."""
    return Clip([values.astype(np.float16).astype(np.float32)], first=1001, source_dtype="float16")


def test_scene_linear_half_reaches_the_model_as_srgb_and_unchanged_pixels_come_back_bit_exact():
    linear = np.array([[[0.0, 0.18, 1.0], [0.5, 0.02, 0.9]]], np.float32)
    working = ModelFrames.prepare(half_clip(linear), fmt="exr")
    assert (working.input_space, working.output_space) == ("Linear Rec.709 (sRGB)", "Linear Rec.709 (sRGB)")
    np.testing.assert_allclose(working.frames[0], srgb_encode(linear.astype(np.float16)), atol=2e-6)
    back = working.restore([working.frames[0].copy()])
    assert back.frames[0].dtype == np.float16 and back.source_dtype == "float16"
    assert back.frames[0].tobytes() == linear.astype(np.float16).tobytes()


def test_an_edited_pixel_goes_back_through_the_exact_inverse():
    linear = np.full((2, 2, 3), 0.18, np.float32)
    working = ModelFrames.prepare(Clip([linear], source_dtype="float32"), fmt="exr")
    edited = working.frames[0].copy()
    edited[0, 0] = [0.25, 0.5, 0.75]
    out = working.restore([edited]).frames[0]
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0], srgb_decode([0.25, 0.5, 0.75]), rtol=1e-5)
    assert (out[1:] == linear[1:]).all() and (out[0, 1] == linear[0, 1]).all()


def test_values_above_one_and_below_zero_come_back_unchanged_even_where_the_model_changed_them():
    linear = np.array([[[4.0, 2.5, 1.5], [-0.01, 0.2, 0.2], [0.2, 0.2, 0.2]]], np.float32)
    working = ModelFrames.prepare(half_clip(linear), fmt="exr")
    edited = np.clip(working.frames[0], 0, 1) * 0.5  # what an edit of clipped input gives
    out = working.restore([edited]).frames[0]
    assert out[0, :2].tobytes() == linear[0, :2].astype(np.float16).tobytes()
    assert out[0, 2].tobytes() != linear[0, 2].astype(np.float16).tobytes()


def test_integer_srgb_frames_go_to_the_editor_as_they_are_and_keep_their_sample_type():
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 65536, (4, 5, 3), dtype=np.uint16)]
    working = ModelFrames.prepare(Clip(frames, source_dtype="uint16"), fmt="png")
    assert working.frames[0] is frames[0] and working.input_space == "sRGB Encoded Rec.709 (sRGB)"
    edited = frames[0].copy()
    edited[1, 1] = 7
    out = working.restore([edited]).frames[0]
    assert out.dtype == np.uint16 and (out == edited).all()


def test_another_output_colourspace_converts_unchanged_pixels_straight_from_the_source():
    linear = np.array([[[3.0, 0.5, 0.1], [0.2, 0.3, 0.4]]], np.float32)
    working = ModelFrames.prepare(Clip([linear], source_dtype="float32"), output_space="ACEScg", fmt="exr")
    out = working.restore([working.frames[0].copy()]).frames[0]
    rec709_to_ap1 = np.array([[0.6131, 0.3395, 0.0474], [0.0702, 0.9164, 0.0134], [0.0206, 0.1096, 0.8698]])
    np.testing.assert_allclose(out, linear @ rec709_to_ap1.T, rtol=2e-3)


def test_integer_input_written_as_exr_defaults_to_scene_linear_and_float_written_as_png_to_srgb():
    frames = [np.array([[[0, 128, 255]]], np.uint8)]
    out = ModelFrames.prepare(Clip(frames, source_dtype="uint8"), fmt="exr").restore(frames).frames[0]
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0], srgb_decode(np.array([0, 128, 255]) / 255), rtol=1e-5)
    linear = [np.array([[[0.0, 0.18, 1.0]]], np.float32)]
    working = ModelFrames.prepare(Clip(linear, source_dtype="float32"), fmt="png")
    png = working.restore([working.frames[0].copy()]).frames[0]
    assert png.dtype == np.uint16
    np.testing.assert_array_equal(png[0, 0], np.rint(srgb_encode([0.0, 0.18, 1.0]) * 65535))


@pytest.mark.parametrize(("source", "fmt", "written"), [
    ("float16", "exr", "float16"), ("float32", "exr", "float32"), ("uint16", "png", "uint16"),
    ("uint8", "png", "uint8"), ("uint8", "tif", "uint8"), ("float16", "tif", "float32"),
    ("float32", "png", "uint16"), ("uint16", "exr", "float32"),
])
def test_the_sample_type_is_kept_where_the_format_holds_it(source, fmt, written):
    assert output_dtype(source, fmt) == np.dtype(written)


def test_alpha_is_kept_and_scaled_to_the_written_sample_type():
    frames = [np.zeros((2, 2, 3), np.uint8)]
    alpha = [np.array([[0, 51], [255, 102]], np.uint8)]
    clip = Clip(frames, alpha=alpha, source_dtype="uint8")
    assert ModelFrames.prepare(clip, fmt="png").restore(frames).alpha[0].tobytes() == alpha[0].tobytes()
    as_exr = ModelFrames.prepare(clip, fmt="exr").restore(frames).alpha[0]
    np.testing.assert_allclose(as_exr, alpha[0] / 255, rtol=1e-6)


def test_gray_stays_gray_and_gray_with_alpha_is_refused():
    gray = np.array([[10, 200], [30, 40]], np.uint8)
    frames = [np.repeat(gray[:, :, None], 3, axis=2)]
    working = ModelFrames.prepare(Clip(frames, source_dtype="uint8", gray=True), fmt="png")
    edited = frames[0].copy()
    edited[0, 0] = [255, 0, 0]
    out = working.restore([edited]).frames[0]
    assert out.shape == (2, 2) and out[0, 0] == round(0.2126 * 255) and (out.ravel()[1:] == gray.ravel()[1:]).all()
    with pytest.raises(UserError, match="gray image with alpha"):
        ModelFrames.prepare(Clip(frames, alpha=[gray], source_dtype="uint8", gray=True))


def test_an_unknown_colourspace_is_one_sentence_with_the_closest_names():
    clip = Clip([np.zeros((2, 2, 3), np.float32)], source_dtype="float32")
    with pytest.raises(UserError, match="--input-colorspace 'linear rec709' is not a colourspace .* did you mean "
                                        "'Linear Rec.709 \\(sRGB\\)'"):
        ModelFrames.prepare(clip, input_space="linear rec709", fmt="exr")
    with pytest.raises(UserError, match="holds data, not colour"):
        ModelFrames.prepare(clip, output_space="Raw", fmt="exr")


def test_the_ocio_environment_variable_picks_the_config(monkeypatch, tmp_path):
    clip = Clip([np.zeros((2, 2, 3), np.float32)], source_dtype="float32")
    monkeypatch.setenv("OCIO", "ocio://cg-config-latest")
    assert ModelFrames.prepare(clip, input_space="ACEScg", fmt="exr").input_space == "ACEScg"
    with pytest.raises(UserError, match="is not a colourspace .*cg-config"):
        ModelFrames.prepare(clip, input_space="ARRI LogC4", fmt="exr")  # only in the studio config
    monkeypatch.setenv("OCIO", str(tmp_path / "missing.ocio"))
    with pytest.raises(UserError, match="could not be read"):
        ModelFrames.prepare(clip, fmt="exr")


def test_read_frames_marks_a_gray_sequence_and_refuses_one_that_mixes_gray_and_rgb(tmp_path):
    import cv2

    from engine.io import read_frames

    cv2.imwrite(str(tmp_path / "g.0001.png"), np.full((20, 20), 9, np.uint8))
    cv2.imwrite(str(tmp_path / "g.0002.png"), np.full((20, 20), 9, np.uint8))
    assert read_frames(tmp_path).gray
    cv2.imwrite(str(tmp_path / "g.0003.png"), np.full((20, 20, 3), 9, np.uint8))
    with pytest.raises(UserError, match="differ in colour channels"):
        read_frames(tmp_path)


def test_a_config_without_srgb_is_one_sentence(monkeypatch, tmp_path):
    import PyOpenColorIO as ocio

    (tmp_path / "raw.ocio").write_text(ocio.Config.CreateRaw().serialize())
    monkeypatch.setenv("OCIO", str(tmp_path / "raw.ocio"))
    with pytest.raises(UserError, match="has none of sRGB Encoded Rec.709 \\(sRGB\\), .*; the model's sRGB needs one"):
        ModelFrames.prepare(Clip([np.zeros((2, 2, 3), np.uint8)], source_dtype="uint8"))
