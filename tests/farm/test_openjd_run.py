"""The bundle's steps run through openjd-cli (`openjd run`, a local OpenJD session) produce
the shot; a killed task rerun gives the same frames; a failed chunk touches no other frames."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from engine.cli import main

BIN = Path(sys.executable).parent
LIMIT = 900  # seconds for the whole job: 4 tasks, each a fresh process loading the tiny models


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def job(shot, tmp_path_factory, flags):
    root = tmp_path_factory.mktemp("openjd")
    assert main(["farm", "bundle", str(shot), "--prompt", "add glasses", "--out", str(root / "out"),
                 "--bundle", str(root / "bundle"), "--preset", "tiny", *flags, "--chunk-size", "6",
                 "--command", str(BIN / "ipfacediff")]) == 0
    bundle = root / "bundle"
    run = subprocess.run([str(BIN / "openjd"), "run", str(bundle / "template.yaml"),
                          "-p", f"file://{bundle / 'job_parameters.yaml'}", "--step", "Assemble", "--run-dependencies"],
                         capture_output=True, text=True, env=_env(), timeout=LIMIT)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    return root, run.stdout


def _params(root: Path) -> dict:
    return yaml.safe_load((root / "bundle" / "job_parameters.yaml").read_text())


def _step(root: Path, *args: str, shot: Path | None = None) -> list[str]:
    """The command line the template gives a task (its embedded spec written out)."""
    spec = root / "spec.json"
    if not spec.exists():
        template = yaml.safe_load((root / "bundle" / "template.yaml").read_text())
        spec.write_text(template["steps"][1]["script"]["embeddedFiles"][0]["data"])
    params = _params(root)
    return [str(BIN / "ipfacediff"), "farm", *args, "--spec", str(spec), "--shot", str(shot or params["Shot"]),
            "--out", params["OutputDir"], "--job-dir", params["JobDir"]]


def _snapshot(folder: Path) -> dict:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.glob("frame_*"))}


def test_openjd_run_of_the_bundle_produces_the_shot_equal_to_the_one_machine_edit(job, one_machine, read_pngs):
    root, log = job
    frames = read_pngs(root / "out")
    assert sorted(frames) == sorted(one_machine) and len(frames) == 10
    for name, image in frames.items():
        assert abs(image.astype(int) - one_machine[name].astype(int)).max() <= 1, name
    jobdir = root / "bundle" / "job"
    for made in ("done", "qc.json", "qc.png", "contact_sheet.png", "preview.mp4", "keyframes.safetensors"):
        assert (jobdir / made).stat().st_size > 0, made
    assert "openjd_progress: 100" in log and "openjd_status: chunk 1: wrote 6 frames" in log
    assert json.loads((jobdir / "done").read_text())["random_weights"] is True  # tiny: labelled as noise


def test_a_killed_task_rerun_writes_the_same_frames(job):
    root, _ = job
    before = _snapshot(root / "out")
    (root / "out" / "frame_edit_001009.png").unlink()  # as if killed between two renames
    task = subprocess.Popen(_step(root, "propagate", "--chunk", "1"), stdout=subprocess.PIPE, text=True,
                            env=_env(), start_new_session=True)
    for line in task.stdout:
        if line.startswith("openjd_status: rebuilding"):
            os.killpg(task.pid, signal.SIGKILL)
            break
    assert task.wait(timeout=LIMIT) == -signal.SIGKILL
    assert subprocess.run(_step(root, "propagate", "--chunk", "1"), env=_env(), capture_output=True,
                          timeout=LIMIT).returncode == 0
    after = _snapshot(root / "out")
    assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in before.items()}
    assert all(after[f"frame_edit_{n:06d}.png"][1] == before[f"frame_edit_{n:06d}.png"][1] for n in range(1001, 1005))


def test_a_failed_chunk_does_not_touch_other_frames(job, tmp_path):
    root, _ = job
    broken = tmp_path / "shot"
    shutil.copytree(_params(root)["Shot"], broken)
    (broken / "frame_001008.png").write_bytes(b"not a png")
    before = _snapshot(root / "out")
    failed = subprocess.run(_step(root, "propagate", "--chunk", "1", shot=broken), env=_env(), capture_output=True,
                            text=True, timeout=LIMIT)
    assert failed.returncode == 2, failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1
    assert _snapshot(root / "out") == before
