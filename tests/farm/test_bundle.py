"""`ipfacediff farm bundle`: an Open Job Description bundle that `openjd check` accepts, three
steps in order, one Propagate task per chunk, the spec embedded; bad input exits 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from engine.cli import main

OPENJD = shutil.which("openjd", path=str(Path(sys.executable).parent))


def _bundle(shot: Path, root: Path, *extra: str) -> int:
    return main(["farm", "bundle", str(shot), "--prompt", "add {{glasses}}", "--out", str(root / "out"),
                 "--bundle", str(root / "bundle"), "--preset", "tiny", "--steps", "3", "--chunk-size", "4",
                 "--command", "ipfacediff", *extra])


def test_the_bundle_passes_openjd_check_and_holds_three_dependent_steps(shot, tmp_path):
    assert _bundle(shot, tmp_path) == 0
    bundle = tmp_path / "bundle"
    assert sorted(p.name for p in bundle.iterdir()) == ["asset_references.yaml", "job_parameters.yaml",
                                                        "parameter_values.yaml", "template.yaml"]
    checked = subprocess.run([OPENJD, "check", str(bundle / "template.yaml")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    template = yaml.safe_load((bundle / "template.yaml").read_text())
    steps = {s["name"]: s for s in template["steps"]}
    assert list(steps) == ["Keyframes", "Propagate", "Assemble"]
    assert steps["Propagate"]["dependencies"] == [{"dependsOn": "Keyframes"}]
    assert steps["Assemble"]["dependencies"] == [{"dependsOn": "Propagate"}]
    chunk = steps["Propagate"]["parameterSpace"]["taskParameterDefinitions"][0]
    assert chunk == {"name": "Chunk", "type": "INT", "range": "0-2"}  # 10 frames in chunks of 4
    spec = json.loads(steps["Keyframes"]["script"]["embeddedFiles"][0]["data"])
    assert spec["prompt"] == "add {{glasses}}" and spec["first"] == 1001 and spec["count"] == 10
    assert "{{glasses" not in (bundle / "template.yaml").read_text()  # not an OpenJD expression
    values = yaml.safe_load((bundle / "parameter_values.yaml").read_text())["parameterValues"]
    assert {v["name"]: v["value"] for v in values}["Shot"] == str(shot)
    assets = yaml.safe_load((bundle / "asset_references.yaml").read_text())["assetReferences"]
    assert assets["inputs"]["directories"] == [str(shot)]
    assert assets["outputs"]["directories"] == [str(tmp_path / "out"), str(bundle / "job")]


def test_a_bundle_over_existing_frames_is_refused_without_overwrite(shot, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "frame_edit_001003.png").write_bytes(b"someone else's")
    assert _bundle(shot, tmp_path) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert not (tmp_path / "bundle").exists()
    assert _bundle(shot, tmp_path, "--overwrite") == 0


def test_bad_bundle_input_exits_2_with_one_sentence(shot, tmp_path, capsys):
    assert _bundle(shot, tmp_path, "--chunk-size", "0") == 2
    assert _bundle(shot, tmp_path, "--frames", "990-1005") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "Traceback" not in "".join(err)
