"""`ipfacediff edit` as a user runs it: a real process, real files, one-sentence errors."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.io import read_frames, write_frames


def run_cli(*args: str, cwd: Path, umask: int = -1) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, umask=umask)


@pytest.fixture(scope="module")
def sequence(tmp_path_factory) -> Path:
    """Noise, no face: the edits here say `--mode full` (auto would pass the frames through)."""
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    folder = tmp_path_factory.mktemp("seq") / "shot"
    write_frames([np.ascontiguousarray(base[:, i:i + 64]) for i in range(12)], folder, start=1001)
    return folder


def test_edit_writes_numbered_frames_stats_and_label(sequence, tmp_path):
    out, stats = tmp_path / "out", tmp_path / "stats.json"
    proc = run_cli("edit", str(sequence), "--prompt", "add glasses", "--frames", "1003-1010", "--out", str(out),
                   "--preset", "tiny", "--steps", "3", "--guidance", "5", "--keyframe-interval", "4",
                   "--stats", str(stats), "--mode", "full", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in out.glob("frame_edit_*.png"))
    assert names == [f"frame_edit_{i:06d}.png" for i in range(1003, 1011)]
    clip = read_frames(out)
    assert clip.first == 1003 and clip.frames[0].shape == (64, 64, 3)
    data = json.loads(stats.read_text())
    assert data["random_weights"] is True and data["settings"]["guidance_scale"] == 5.0
    # 3T (T = 3) plus the 3 keyframes' q/k re-run by ε1 in the 2 attention steps, over 8 frames
    assert data["keyframes"] == [0, 4, 7] and data["unet_evals"]["per_frame"] == 9 + 3 * 2 / 8
    assert (out / "RANDOM_WEIGHTS.txt").exists()
    log_lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert log_lines and all(line.startswith("[RANDOM WEIGHTS]") for line in log_lines)


def test_cli_matches_the_python_api(sequence, tmp_path, tiny_editor):
    from engine.settings import Settings

    out = tmp_path / "out"
    proc = run_cli("edit", str(sequence), "--prompt", "make him smile", "--out", str(out), "--preset", "tiny",
                   "--steps", "2", "--format", "tif", "--mode", "full", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    api = tiny_editor.edit(read_frames(sequence).frames, "make him smile", Settings(steps=2, face_mode="full")).frames
    cli = read_frames(out).frames
    assert all(np.array_equal(a, b) for a, b in zip(api, cli))


@pytest.mark.parametrize("args, message", [
    (["/no/such/clip"], "does not exist"),
    (["{seq}", "--frames", "990-1003"], "outside the available frames"),
    (["{seq}", "--frames", "x-y"], "--frames must look like"),
    (["{seq}", "--prompt", "  "], "prompt is empty"),
    (["{seq}", "--preset", "huge"], "unknown preset 'huge'"),
    (["{seq}", "--steps", "0"], "steps must be a whole number from 1"),
    (["{seq}", "--model", "./missing-model"], "neither a preset"),
])
def test_bad_input_one_sentence_no_traceback_nothing_written(sequence, tmp_path, args, message):
    args = [a.replace("{seq}", str(sequence)) for a in args]
    if "--prompt" not in args:
        args += ["--prompt", "add glasses"]
    if "--preset" not in args and "--model" not in args:
        args += ["--preset", "tiny"]
    out = tmp_path / "out"
    proc = run_cli("edit", *args, "--out", str(out), "--quiet", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ipfacediff:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_mixed_frame_sizes_are_refused(tmp_path):
    folder = tmp_path / "mixed"
    write_frames([np.zeros((64, 64, 3), np.uint8)], folder, start=1)
    write_frames([np.zeros((32, 64, 3), np.uint8)], tmp_path / "other", start=2)
    (tmp_path / "other" / "frame_000002.png").rename(folder / "frame_000002.png")
    proc = run_cli("edit", str(folder), "--prompt", "x", "--out", str(tmp_path / "o"), "--preset", "tiny",
                   cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "size" in proc.stderr


def _tree(*folders: Path) -> dict[str, bytes | None]:
    """Every path under the folders, with file contents (None for folders)."""
    return {str(p): (p.read_bytes() if p.is_file() else None) for f in folders for p in sorted(f.rglob("*"))}


def _edit(sequence: Path, out: Path, frames: str, *extra: str, prompt: str = "add glasses", umask: int = -1):
    return run_cli("edit", str(sequence), "--prompt", prompt, "--frames", frames, "--out", str(out), "--preset",
                   "tiny", "--steps", "1", "--qc-every", "0", "--mode", "full", "--quiet", *extra, cwd=out.parent,
                   umask=umask)


@pytest.mark.parametrize("args, message", [
    (["--out", "{seq}", "--overwrite"], "is or contains the input"),
    (["--out", "{seq}/..", "--overwrite"], "is or contains the input"),
    (["--out", "{tmp}/a_file"], "a_file exists and is not a folder"),
    (["--out", "{tmp}/a_file/sub"], "a_file is a file, so the folder"),
    pytest.param(["--out", "/proc/ipfacediff-out"], "/proc is not writable",  # even root cannot write there
                 marks=pytest.mark.skipif(sys.platform != "linux", reason="needs /proc")),
    (["--video", "{tmp}/prev.txt"], "the video prev.txt must end in .mp4, .mov, .mkv"),
    (["--stats", "{seq}/frame_001001.png", "--overwrite"], "frame_001001.png is part of the input"),
    (["--stats", "{tmp}/a_file"], "a_file already exists; pass --overwrite"),
    (["--report", "{tmp}/qc.txt"], "the report must be a .png or .html file"),
    (["--prompt", "x" * 1001], "the prompt is 1001 characters long; the limit is 1000"),
    (["--steps", "0"], "steps must be a whole number from 1"),
    (["--frames", "990-1003"], "outside the available frames"),
])
def test_bad_outputs_and_inputs_are_refused_before_any_model_loads(sequence, tmp_path, capsys, args, message):
    """In-process `main` (fast); the model named cannot load, so a message about anything else
    proves the check came first."""
    from engine.cli import main

    args = [a.replace("{seq}", str(sequence)).replace("{tmp}", str(tmp_path)) for a in args]
    (tmp_path / "a_file").write_text("keep me")
    before = _tree(sequence, tmp_path)
    defaults = {"--prompt": "add glasses", "--out": str(tmp_path / "out"), "--frames": "1001-1002"}
    flags = [x for flag, value in defaults.items() if flag not in args for x in (flag, value)]
    status = main(["edit", str(sequence), *args, *flags, "--model", str(tmp_path / "missing-model"), "--quiet"])
    errors = capsys.readouterr().err.splitlines()
    assert status == 2 and len(errors) == 1 and errors[0].startswith("ipfacediff:") and message in errors[0], errors
    assert _tree(sequence, tmp_path) == before


def test_chunks_of_one_shot_rendered_into_one_folder_all_survive_with_umask_modes(sequence, tmp_path):
    out = tmp_path / "chunks"
    first = _edit(sequence, out, "1001-1002", "--video", str(tmp_path / "a.mp4"), "--stats", str(tmp_path / "a.json"),
                  umask=0o022)
    assert first.returncode == 0, first.stderr
    second = _edit(sequence, out, "1003-1004", umask=0o022)
    assert second.returncode == 0, second.stderr
    assert sorted(p.name for p in out.glob("frame_edit_*")) == [f"frame_edit_{n:06d}.png" for n in range(1001, 1005)]
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    for path in [*out.iterdir(), tmp_path / "a.mp4", tmp_path / "a.json"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_an_existing_output_frame_is_refused_without_overwrite_and_replaced_with_it(sequence, tmp_path):
    out = tmp_path / "out"
    assert _edit(sequence, out, "1001-1002").returncode == 0
    before = _tree(out)
    refused = _edit(sequence, out, "1002-1003", prompt="make him smile")
    assert refused.returncode == 2 and "frame_edit_001002.png already exists; pass --overwrite" in refused.stderr
    assert _tree(out) == before
    replaced = _edit(sequence, out, "1002-1003", "--overwrite", prompt="make him smile")
    assert replaced.returncode == 0, replaced.stderr
    after = _tree(out)
    assert after[str(out / "frame_edit_001001.png")] == before[str(out / "frame_edit_001001.png")]
    assert after[str(out / "frame_edit_001002.png")] != before[str(out / "frame_edit_001002.png")]
    assert str(out / "frame_edit_001003.png") in after


def test_a_prompt_longer_than_the_text_encoder_reads_is_reported_where_it_is_cut(sequence, tmp_path):
    # the tiny preset's tokenizer reads one token per character: "add glasses" is 10 tokens and
    # each "wNN" 3, so 21 of them fill the 75 the encoder reads and the cut falls after word 23
    prompt = "add glasses " + " ".join(f"w{i:02d}" for i in range(40))
    stats = tmp_path / "stats.json"
    proc = _edit(sequence, tmp_path / "out", "1001-1001", "--stats", str(stats), prompt=prompt)
    assert proc.returncode == 0, proc.stderr
    expected = ("the prompt is 130 tokens but the text encoder reads 75; it is cut after word 23 "
                "('…w17 w18 w19 w20'), so 'w21 w22")
    warnings = [line for line in proc.stderr.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and expected in warnings[0], proc.stderr
    recorded = json.loads(stats.read_text())["warnings"]
    assert len(recorded) == 1 and recorded[0].startswith(expected)


def test_progress_off_a_terminal_is_a_few_lines_per_stage_with_an_eta_not_a_line_per_step(sequence, tmp_path):
    proc = run_cli("edit", str(sequence), "--prompt", "add glasses", "--frames", "1001-1004", "--out",
                   str(tmp_path / "out"), "--preset", "tiny", "--steps", "6", "--qc-every", "0", "--mode", "full",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    shown = [line.removeprefix("[RANDOM WEIGHTS] ") for line in proc.stderr.splitlines()]  # \r counts as a break
    progress = [line for line in shown if line.split(" ", 1)[0] in ("invert", "edit", "decode")]
    stages = [line.split(" ", 1)[0] for line in progress]
    assert stages[0] == "invert" and "edit" in stages, proc.stderr
    for stage in set(stages):  # a line when the stage starts, then at most one every 5 s, and the last state
        seconds = [_clock_seconds(line.split("elapsed ")[1].split()[0]) for line in progress if line.startswith(stage)]
        assert len(seconds) <= 2 + (seconds[-1] - seconds[0]) / 5 + 1, proc.stderr
    assert all(" ETA " in line and "% " in line for line in progress), progress
    assert progress[-1].split()[1] == "100%", progress


def _clock_seconds(text: str) -> int:
    """'1:02:03' or '0:41' -> seconds."""
    seconds = 0
    for part in text.split(":"):
        seconds = seconds * 60 + int(part)
    return seconds


def _parse_error(capsys, *argv: str) -> list[str]:
    from engine.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    assert exit_.value.code == 2
    return capsys.readouterr().err.splitlines()


def test_a_command_line_mistake_is_one_line_and_where_to_read_more_not_the_usage(capsys):
    lines = _parse_error(capsys, "edit", "clip/", "--prompt", "x")
    assert lines == ["ipfacediff edit: the following arguments are required: --out",
                     "see `ipfacediff edit --help`"]
    assert _parse_error(capsys, "serve", "--max-frames", "many")[-1] == "see `ipfacediff serve --help`"


def test_a_bad_keyframe_list_is_named_as_such_not_as_a_lambda(capsys):
    lines = _parse_error(capsys, "edit", "clip/", "--prompt", "x", "--out", "o", "--keyframes", "0,x")
    assert lines[0] == ("ipfacediff edit: argument --keyframes: '0,x' is not a comma-separated list of int "
                        "numbers (e.g. 0,8,16)"), lines


def _subcommands() -> dict:
    import argparse

    from engine.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def test_every_flag_of_every_command_says_what_it_does():
    missing = [(name, action.option_strings) for name, parser in _subcommands().items()
               for action in parser._actions if action.option_strings and not action.help]
    assert missing == []


def test_qc_and_eval_offer_no_paste_back_flags_they_would_ignore():
    for name in ("qc", "eval"):
        dests = {action.dest for action in _subcommands()[name]._actions}
        assert "face_subject" in dests and "qc_every" in dests
        assert not dests & {"face_mask", "face_mask_dilate", "face_feather", "face_paste", "face_color_match"}, name


def test_the_qc_report_of_a_random_weight_edit_says_so_in_its_title(sequence, tmp_path, capsys):
    from engine.cli import main

    report = tmp_path / "qc.html"
    proc = _edit(sequence, tmp_path / "out", "1001-1002", "--qc-every", "1", "--report", str(report))
    assert proc.returncode == 0, proc.stderr
    assert "<title>ipfacediff QC [RANDOM WEIGHTS] (noise, not an edit)</title>" in report.read_text()
    # `qc` of that folder: the edit's own label (RANDOM_WEIGHTS.txt) titles its report too; a real edit's does not
    for folder, title in ((tmp_path / "out", "ipfacediff QC [RANDOM WEIGHTS] (noise, not an edit)"),
                          (sequence, "ipfacediff QC")):
        again = tmp_path / f"again_{folder.name}.html"
        assert main(["qc", str(sequence), str(folder), "--frames", "1001-1002", "--report", str(again)]) == 0
        assert f"<title>{title}</title>" in again.read_text()
    capsys.readouterr()
