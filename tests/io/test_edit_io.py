"""What `ipfacediff edit` writes back: alpha, sample type, gray, colourspace, file names and frame
numbers as the source had them (issue 15 items 1-4, 8)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from engine.cli import main
from engine.io import read_frames
from engine.io.exr import write_exr
from tests.io.test_colour import srgb_encode

EDIT = ["--prompt", "add glasses", "--preset", "tiny", "--steps", "2", "--mode", "full", "--quiet"]


def _edit(source, out, *extra):
    return main(["edit", str(source), "--out", str(out), *EDIT, *extra])


def _texture(seed: int, shape=(64, 64, 3)) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def test_an_rgba_png_comes_back_rgba_with_its_alpha_untouched(tmp_path):
    (tmp_path / "in").mkdir()
    rgba = [(np.dstack([_texture(i), _texture(9 + i, (64, 64))]) * 255).astype(np.uint8) for i in range(2)]
    for i, image in enumerate(rgba):
        cv2.imwrite(str(tmp_path / "in" / f"shot.{1001 + i}.png"), cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA))
    assert _edit(tmp_path / "in", tmp_path / "out", "--name", "comp_v2_%05d") == 0
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["comp_v2_01001.png", "comp_v2_01002.png"]
    back = read_frames(tmp_path / "out")
    assert back.alpha is not None and back.source_dtype == "uint8"
    for got, alpha, source in zip(back.alpha, [a[:, :, 3] for a in rgba], rgba):
        assert got.tobytes() == alpha.tobytes()
    assert not np.array_equal(back.frames[0], rgba[0][:, :, :3]), "the colour was edited"


def test_a_linear_half_exr_comes_back_half_and_linear_with_values_above_one_unchanged(tmp_path):
    (tmp_path / "in").mkdir()
    frames = []
    for i in range(2):
        linear = _texture(i) ** 2.2
        linear[:8, :8] = [3.0, 2.0, 1.5]  # a highlight
        frames.append(linear.astype(np.float16))
        write_exr(tmp_path / "in" / f"shot.{1001 + i}.exr", frames[-1])
    stats = tmp_path / "stats.json"
    assert _edit(tmp_path / "in", tmp_path / "out", "--format", "exr", "--stats", str(stats),
                 "--video", str(tmp_path / "preview.mp4")) == 0
    assert sorted(p.name for p in (tmp_path / "out").glob("*.exr")) == ["shot_edit.1001.exr", "shot_edit.1002.exr"]
    back = read_frames(tmp_path / "out")
    assert back.source_dtype == "float16" and back.first == 1001
    for got, source in zip(back.frames, frames):
        got = got.astype(np.float16)
        assert got[:8, :8].tobytes() == source[:8, :8].tobytes()
        changed = (got != source).any(axis=-1)
        assert changed[8:].mean() > 0.9 and np.isfinite(got).all() and got[8:].max() <= 1.0
    shown = read_frames(tmp_path / "preview.mp4").frames[0][8:] / 255.0  # the preview is display-referred
    srgb = srgb_encode(np.clip(back.frames[0][8:], 0, 1))
    assert abs(shown.mean() - srgb.mean()) < 0.02 and shown.mean() - back.frames[0][8:].mean() > 0.1
    qc = json.loads(stats.read_text())["qc"]
    assert qc["first_frame"] == 1001 and [b["frame"] for b in qc["crop_boxes"]] == [1001, 1002]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_integer_pngs_keep_their_bit_depth_and_gray_stays_gray(tmp_path, dtype):
    (tmp_path / "in").mkdir()
    top = np.iinfo(dtype).max
    for i in range(2):
        cv2.imwrite(str(tmp_path / "in" / f"g.{i + 1:04d}.png"), (_texture(i, (64, 64)) * top).astype(dtype))
    assert _edit(tmp_path / "in", tmp_path / "out") == 0
    back = read_frames(tmp_path / "out")
    assert back.gray and back.source_dtype == np.dtype(dtype).name
    written = cv2.imread(str(next((tmp_path / "out").glob("*.png"))), cv2.IMREAD_UNCHANGED)
    assert written.shape == (64, 64) and written.dtype == dtype


def test_an_unknown_colourspace_is_refused_in_one_sentence_before_any_model_loads(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    write_exr(tmp_path / "in" / "shot.1001.exr", _texture(0))
    assert _edit(tmp_path / "in", tmp_path / "out", "--input-colorspace", "LogC9") == 2
    err = capsys.readouterr().err
    assert "--input-colorspace 'LogC9' is not a colourspace of the OCIO config" in err
    assert "model" not in err.split("OCIO config")[0] and not (tmp_path / "out").exists()
