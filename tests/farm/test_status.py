"""Progress and status lines in Open Job Description's form; user errors of a step exit 2."""

from __future__ import annotations

import io
import re

from engine.cli import main
from engine.farm.status import TaskStatus


def test_progress_lines_are_whole_percents_that_never_go_back_and_status_is_one_line():
    out = io.StringIO()
    status = TaskStatus(out)
    status.stage("reading\nthe shot", 0, 10)
    status.progress(0.55)
    status.stage("editing", 10, 90)
    for f in (0.5, 0.25, 0.5, 1.0):
        status.engine("edit", 1, f)
    status.stage("writing", 90, 100)
    status.progress(1.0)
    lines = out.getvalue().splitlines()
    assert "openjd_status: reading the shot" in lines
    percents = [int(m.group(1)) for m in map(re.compile(r"openjd_progress: (\d+)$").match, lines) if m]
    assert percents == sorted(set(percents)) and percents[0] == 0 and percents[-1] == 100
    assert 5 in percents and 50 in percents
    assert all(re.fullmatch(r"openjd_(progress: \d+|status: [^\n]+)", line) for line in lines)


def test_a_chunk_that_does_not_exist_exits_2(tmp_path, make_spec, capsys):
    spec = tmp_path / "spec.json"
    spec.write_text(make_spec(6).to_json())
    code = main(["farm", "propagate", "--chunk", "2", "--spec", str(spec), "--shot", str(tmp_path),
                 "--out", str(tmp_path / "out"), "--job-dir", str(tmp_path / "job")])
    assert code == 2
    assert capsys.readouterr().err.strip() == "ipfacediff: chunk 2 does not exist; this job has chunks 0-1."


def test_a_step_before_the_keyframes_step_exits_2(tmp_path, make_spec, shot, capsys):
    spec = tmp_path / "spec.json"
    spec.write_text(make_spec(5).to_json())
    code = main(["farm", "assemble", "--spec", str(spec), "--shot", str(shot), "--out", str(tmp_path / "out"),
                 "--job-dir", str(tmp_path / "job")])
    assert code == 2 and "run the Keyframes step first" in capsys.readouterr().err
