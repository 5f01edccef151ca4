"""`ipfacediff edit` as a user runs it: a real process, real files, one-sentence errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.io import read_frames, write_frames


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def sequence(tmp_path_factory) -> Path:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    folder = tmp_path_factory.mktemp("seq") / "shot"
    write_frames([np.ascontiguousarray(base[:, i:i + 64]) for i in range(12)], folder, start=1001)
    return folder


def test_edit_writes_numbered_frames_stats_and_label(sequence, tmp_path):
    out, stats = tmp_path / "out", tmp_path / "stats.json"
    proc = run_cli("edit", str(sequence), "--prompt", "add glasses", "--frames", "1003-1010", "--out", str(out),
                   "--preset", "tiny", "--steps", "3", "--guidance", "5", "--keyframe-interval", "4",
                   "--stats", str(stats), "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in out.glob("frame_*.png"))
    assert names == [f"frame_{i:06d}.png" for i in range(1003, 1011)]
    clip = read_frames(out)
    assert clip.first == 1003 and clip.frames[0].shape == (64, 64, 3)
    data = json.loads(stats.read_text())
    assert data["random_weights"] is True and data["settings"]["guidance_scale"] == 5.0
    assert data["keyframes"] == [0, 4, 7] and data["unet_evals"]["per_frame"] == 9
    assert (out / "RANDOM_WEIGHTS.txt").exists()
    log_lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert log_lines and all(line.startswith("[RANDOM WEIGHTS]") for line in log_lines)


def test_cli_matches_the_python_api(sequence, tmp_path, tiny_editor):
    from engine.settings import Settings

    out = tmp_path / "out"
    proc = run_cli("edit", str(sequence), "--prompt", "make him smile", "--out", str(out), "--preset", "tiny",
                   "--steps", "2", "--format", "tif", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    api = tiny_editor.edit(read_frames(sequence).frames, "make him smile", Settings(steps=2)).frames
    cli = read_frames(out).frames
    assert all(np.array_equal(a, b) for a, b in zip(api, cli))


@pytest.mark.parametrize("args, message", [
    (["/no/such/clip"], "does not exist"),
    (["{seq}", "--frames", "990-1003"], "outside the available frames"),
    (["{seq}", "--frames", "x-y"], "--frames must look like"),
    (["{seq}", "--prompt", "  "], "prompt is empty"),
    (["{seq}", "--preset", "huge"], "unknown preset 'huge'"),
    (["{seq}", "--steps", "0"], "steps must be at least 1"),
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
