"""`ipfacediff edit --engine` says and writes what the in-process edit does: progress with an ETA,
the QC line, --report and --stats numbered as the source; a clip with no face comes back unchanged
with the warning and exit 3; the engine's refusals and a missing engine are one sentence and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
from serverkit import ROOT, clip, free_port

from engine.io import write_frames
from server import protocol as P


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})


def _lines(stderr: str, start: str) -> list[str]:
    return [line.removeprefix("[RANDOM WEIGHTS] ") for line in stderr.splitlines()
            if line.removeprefix("[RANDOM WEIGHTS] ").startswith(start)]


def test_edit_through_engine_prints_qc_and_progress_and_writes_the_report_as_in_process(engine, tmp_path):
    write_frames(clip(3, seed=42), tmp_path / "in", start=7)
    runs = {}
    for where, how in (("local", ["--preset", "tiny"]), ("remote", ["--engine", engine.address])):
        runs[where] = cli("edit", str(tmp_path / "in"), "--out", str(tmp_path / where), "--prompt", "add glasses",
                          "--steps", "2", "--mode", "full", "--report", str(tmp_path / f"{where}.html"),
                          "--stats", str(tmp_path / f"{where}.json"), *how)
        assert runs[where].returncode == 0, runs[where].stderr
        assert (tmp_path / f"{where}.html").stat().st_size > 0
    local, remote = runs["local"].stderr, runs["remote"].stderr
    assert _lines(remote, "QC:") == _lines(local, "QC:") and len(_lines(local, "QC:")) == 1, remote
    assert _lines(remote, "wrote the QC report to") != []
    qc = [json.loads((tmp_path / f"{where}.json").read_text())["qc"] for where in ("local", "remote")]
    assert qc[0]["first_frame"] == qc[1]["first_frame"] == 7
    assert qc[0]["identity_distance"] == qc[1]["identity_distance"]
    progress = _lines(remote, "invert") + _lines(remote, "edit ")
    assert progress and all(" ETA " in line for line in progress), remote


def test_an_engine_refusal_is_its_sentence_and_exit_2_not_an_internal_error(engine, tmp_path):
    write_frames(clip(33, seed=43, size=16), tmp_path / "in", start=1)  # the test engine takes 32 frames
    out = cli("edit", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--prompt", "add glasses",
              "--engine", engine.address, "--quiet")
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines()[-1] == ("ipfacediff: the engine refused the edit: 33 frames is more "
                                                   "than the limit of 32.")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_no_engine_at_the_address_is_said_within_ten_seconds_with_how_to_start_one(tmp_path, capsys):
    from engine.cli import main

    write_frames(clip(2, seed=44), tmp_path / "in", start=1)
    nobody = f"tcp://127.0.0.1:{free_port()}"
    began = time.monotonic()
    status = main(["edit", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--prompt", "add glasses",
                   "--engine", nobody])
    took = time.monotonic() - began
    assert status == 2 and took < 10, took  # it took 54 s and exited 1 as an internal error
    assert capsys.readouterr().err.strip() == (f"ipfacediff: no engine answered at {nobody} within 5 s; start one "
                                               f"with `ipfacediff serve --bind {nobody}`, or check --engine.")


def test_a_clip_without_a_face_through_the_engine_is_done_unchanged_with_the_warning_and_edit_exits_3(
        engine, client, tmp_path):
    from engine.editor import NO_FACE
    from engine.io import read_frames

    frames = clip(2, seed=45)
    acc = client.submit("add glasses", frames=frames, settings={"steps": 2})  # auto mode, noise: no face
    assert client.wait(acc["job"], timeout=120)["state"] == "done"
    res = client.result(acc["job"])
    assert res.status == P.DONE and NO_FACE in res.warnings and res.stats["no_face"] is True
    assert all(np.array_equal(o, f) for o, f in zip(res.frames, frames))
    write_frames(frames, tmp_path / "in", start=1)
    out = cli("edit", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--prompt", "add glasses",
              "--steps", "2", "--quiet", "--engine", engine.address)
    assert out.returncode == 3, out.stderr
    assert _lines(out.stderr, "warning:") == [f"warning: {NO_FACE}"], out.stderr
    assert all(np.array_equal(o, f) for o, f in zip(read_frames(tmp_path / "out").frames, frames))
