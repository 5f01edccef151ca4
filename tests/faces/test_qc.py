"""QC record, report and the `qc` / `eval` commands."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from engine.faces import paste, prepare, samples
from engine.faces.samples import Actor
from engine.metrics.quality import qc
from engine.metrics.report import render_report
from engine.settings import Settings


def _swap_identity(plan, frames_to_swap, other="grace_hopper"):
    """A fake edit: frames in `frames_to_swap` get another person's face, the rest a slight tint."""
    photo = samples.photo(other)
    (fx, fy), size = samples.FACES[other]
    side = 1.9 * size
    patch = photo[int(fy - side / 2):int(fy + side / 2), int(fx - side / 2):int(fx + side / 2)]
    out = []
    for i, crop in zip(plan.crop_frames, plan.crops):
        if i in frames_to_swap:
            out.append(cv2.resize(patch, crop.shape[:2][::-1]).astype(np.float32) / 255)
        else:
            out.append(np.clip(crop * np.array([1.03, 1.0, 0.97], np.float32), 0, 1))
    return out


@pytest.fixture(scope="module")
def edited(moving_clip, moving_plan):
    frames = moving_clip[0]
    return frames, paste(frames, _swap_identity(moving_plan, {6, 7}), moving_plan)


def test_qc_flags_exactly_the_drifted_frames(edited, moving_plan, facenet, tmp_path):
    frames, out = edited
    result = qc(frames, out, moving_plan, embedder=facenet)
    json.dumps(result)  # serialisable as is
    assert result["embedder"] == "facenet" and result["drifted_frames"] == [6, 7]
    d = result["identity_distance"]
    assert all(d[i] < 0.1 for i in range(len(frames)) if i not in (6, 7))
    w = result["warp_error"]
    assert w["edited"][6] > 2 * w["original"][6]  # the swap is a jump in time too
    assert len(result["crop_boxes"]) == len(frames) and result["status"] == ["face"] * len(frames)
    for suffix in ("png", "html"):
        path = render_report(frames, out, result, tmp_path / f"qc.{suffix}")
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG") if suffix == "png" else b"data:image/png;base64," in data
    image = cv2.imread(str(tmp_path / "qc.png"))
    assert image.shape[0] > 600 and image.shape[1] > 1000


def test_qc_without_a_face_measures_warp_only(tmp_path):
    frames = [np.full((200, 300, 3), 90 + i, np.uint8) for i in range(4)]
    passed = qc(frames, frames, prepare(frames, Settings()))  # auto: no face, the clip passes through
    assert passed["mode"] == "crop" and passed["warp_error"]["mean_edited"] is None
    plan = prepare(frames, Settings(face_mode="full"))
    result = qc(frames, frames, plan)
    assert result["mode"] == "full" and result["embedder"] is None and result["drifted_frames"] == []
    assert result["warp_error"]["mean_edited"] is not None
    assert render_report(frames, frames, result, tmp_path / "r.png").stat().st_size > 10_000


def _write(frames, folder):
    from engine.io import write_frames

    write_frames(frames, folder, fmt="png")
    return folder


def test_qc_command(tmp_path, capsys):
    from engine.cli import main

    frames, _ = samples.clip([Actor("astronaut", (480, 270), 170, shift=(20, 10), period=6)], 6, size=(540, 960))
    plan = prepare(frames, Settings())
    out = paste(frames, _swap_identity(plan, {3}), plan)
    a, b = _write(frames, tmp_path / "orig"), _write(out, tmp_path / "edit")
    assert main(["qc", str(a), str(b), "--json", "--report", str(tmp_path / "r.png")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["drifted_frames"] == [3] and (tmp_path / "r.png").exists()
    assert main(["qc", str(a), str(b), "--fail-on-drift"]) == 3
    text = capsys.readouterr().out
    assert "DRIFT" in text and "drifted frames: 3" in text
    assert main(["qc", str(a), str(tmp_path / "missing")]) == 2


def test_eval_command_prints_table_rows(tmp_path, capsys):
    from engine.cli import main

    names = samples.available()[:3]
    for name in names:
        frames, _ = samples.clip([Actor(name, (320, 240), 150, shift=(10, 5), period=4)], 3, size=(480, 640))
        _write(frames, tmp_path / "orig" / name)
        _write([cv2.GaussianBlur(f, (0, 0), 1.0) for f in frames], tmp_path / "ours" / name)
        _write([np.clip(f.astype(int) + 40, 0, 255).astype(np.uint8) for f in frames], tmp_path / "base" / name)
    rc = main(["eval", "--original", str(tmp_path / "orig"), "--edited", f"ours={tmp_path / 'ours'}",
               "--edited", str(tmp_path / "base")])
    text = capsys.readouterr().out
    assert rc == 0
    assert "| facenet Cosine | facenet R@1 | facenet MRR |" in text
    row = next(line for line in text.splitlines() if line.startswith("| ours |"))
    assert row.split("|")[3].strip() == "1.00"  # R@1
    assert "Temporal Consistency" in text and "| original |" in text and "| base |" in text


def _numbered_clips(tmp_path):
    """Frames 1001-1006 of a face that leaves the shot for its last two frames (they pass
    through), edited with another identity in frame 1003."""
    frames, _ = samples.clip([Actor("astronaut", (480, 270), 170, shift=(20, 10), period=6)], 6, size=(540, 960))
    frames[4:] = [np.full_like(frames[0], 120) for _ in frames[4:]]
    plan = prepare(frames, Settings())
    out = paste(frames, _swap_identity(plan, {2}), plan)
    return frames, out, plan


def test_qc_command_numbers_frames_as_the_source_files_do(tmp_path, capsys):
    from engine.cli import main
    from engine.io import write_frames

    frames, out, _ = _numbered_clips(tmp_path)
    write_frames(frames, tmp_path / "orig", start=1001)
    write_frames(out, tmp_path / "edit", start=1001)
    assert main(["qc", str(tmp_path / "orig"), str(tmp_path / "edit"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["first_frame"] == 1001 and result["drifted_frames"] == [1003]
    assert result["passed_through"] == [1005, 1006]
    assert {b["frame"] for b in result["crop_boxes"]} == {1001, 1002, 1003, 1004}
    assert main(["qc", str(tmp_path / "orig"), str(tmp_path / "edit")]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert [r.split()[0] for r in rows[2:8]] == ["1001", "1002", "1003", "1004", "1005", "1006"]
    assert rows[4].endswith("DRIFT") and rows[6].endswith("passed through") and rows[8] == "drifted frames: 1003"


def test_passed_through_frames_are_marked_in_the_summary_report_and_contact_sheet(tmp_path, facenet):
    from engine.metrics.quality import numbered
    from engine.metrics.report import keyframes, summary

    frames, out, plan = _numbered_clips(tmp_path)
    result = numbered(qc(frames, out, plan, embedder=facenet), 1001)
    assert result["status"][4:] == ["no_face", "no_face"]
    assert "2 frame(s) passed through unchanged: 1005-1006 (no face)" in summary(result)
    assert 4 in keyframes(result, len(frames)), "the first passed-through frame is on the contact sheet"
    page = render_report(frames, out, result, tmp_path / "qc.html").read_text()
    assert page.count("passed through unchanged</td>") == 2 and "<td>1005</td>" in page
    assert render_report(frames, out, result, tmp_path / "qc.png").stat().st_size > 10_000


def test_qc_of_scene_linear_exr_measures_what_the_srgb_clip_measures(tmp_path, capsys):
    from engine.cli import main
    from engine.io import write_frames
    from tests.io.test_colour import srgb_decode

    frames, out, _ = _numbered_clips(tmp_path)
    for name, clip in (("orig", frames), ("edit", out)):
        write_frames(clip, tmp_path / name, start=1001)
        write_frames([srgb_decode(f / 255.0).astype(np.float32) for f in clip], tmp_path / f"{name}_exr",
                     start=1001, fmt="exr")
    results = []
    for suffix in ("", "_exr"):
        assert main(["qc", str(tmp_path / f"orig{suffix}"), str(tmp_path / f"edit{suffix}"), "--json"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    png, exr = results
    assert exr["drifted_frames"] == png["drifted_frames"] == [1003]
    np.testing.assert_allclose([d or 0 for d in exr["identity_distance"]], [d or 0 for d in png["identity_distance"]],
                               atol=0.02)
    assert exr["warp_error"]["mean_edited"] == pytest.approx(png["warp_error"]["mean_edited"], rel=0.05)
    assert main(["qc", str(tmp_path / "orig_exr"), str(tmp_path / "edit_exr"), "--input-colorspace", "nope"]) == 2


def test_the_demo_contact_sheet_tags_the_output_tiles_of_passed_through_frames():
    from engine.demo import contact_sheet

    frames = [np.full((64, 64, 3), 200, np.uint8) for _ in range(4)]
    plain = contact_sheet(frames, frames, "x", columns=4, tile=64)
    tagged = contact_sheet(frames, frames, "x", columns=4, tile=64, passed=[3])
    changed = np.argwhere((plain != tagged).any(axis=2))
    rows, cols = changed[:, 0], changed[:, 1]
    # only the output row's last tile (frame 3), in its bottom band, carries the tag
    assert len(changed) > 0 and cols.min() >= 3 * 64 and rows.min() >= 28 + 64 + 64 - 22
