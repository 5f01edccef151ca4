"""A shot's farm job as an Open Job Description job bundle.

In: a `FarmSpec`, the shot, output and job folders, the command that runs `ipfacediff` on
the nodes, the device. Out: `BUNDLE/template.yaml` (job template, specification
jobtemplate-2023-09, checked with openjd-model before it is written),
`BUNDLE/parameter_values.yaml` and `BUNDLE/asset_references.yaml` — the layout
`deadline bundle submit` reads — and `BUNDLE/job_parameters.yaml`, the same values as the
flat map `openjd run -p file://...` reads. Three steps: Keyframes; Propagate, one task per chunk
(task parameter `Chunk`, an INT range), after Keyframes; Assemble, after Propagate. The spec
travels inside the template as an embedded file, so every task reads the same settings;
paths are PATH job parameters, so a farm can map them.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from engine.errors import UserError
from engine.farm.spec import FarmSpec


def _no_expressions(text: str) -> str:
    """JSON with every brace inside a string written as \\u007b / \\u007d, so nothing in it reads
    as an OpenJD `{{ expression }}` (the structural braces of indented json.dumps never pair up)."""
    return re.sub(r'"(?:[^"\\]|\\.)*"',
                  lambda m: m.group(0).replace("{", "\\u007b").replace("}", "\\u007d"), text)


def _step(name: str, spec_json: str, args: list[str], **extra) -> dict:
    common = ["--spec", "{{Task.File.Spec}}", "--shot", "{{Param.Shot}}", "--out", "{{Param.OutputDir}}",
              "--job-dir", "{{Param.JobDir}}"]
    return {
        "name": name,
        **extra,
        "script": {
            "embeddedFiles": [{"name": "Spec", "type": "TEXT", "filename": "spec.json", "data": spec_json}],
            "actions": {"onRun": {"command": "{{Param.Ipfacediff}}", "args": ["farm", *args, *common],
                                  "cancelation": {"mode": "NOTIFY_THEN_TERMINATE"}}},
        },
    }


def job_template(spec: FarmSpec, name: str) -> dict:
    spec_json = _no_expressions(spec.to_json())
    device = ["--device", "{{Param.Device}}"]
    return {
        "specificationVersion": "jobtemplate-2023-09",
        "name": name,
        "description": f"ipfacediff farm edit of {spec.count} frames: keyframes, {len(spec.chunks)} chunks, assemble.",
        "parameterDefinitions": [
            {"name": "Shot", "type": "PATH", "dataFlow": "IN", "description": "video file, image-sequence folder or pattern"},
            {"name": "OutputDir", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "OUT",
             "description": "where the edited frames go (frame_%06d.<ext>, the source's numbers)"},
            {"name": "JobDir", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "OUT",
             "description": "shared job folder: keyframe data, face plan, QC, preview, done marker"},
            {"name": "Ipfacediff", "type": "STRING", "default": "ipfacediff",
             "description": "the ipfacediff command on the nodes"},
            {"name": "Device", "type": "STRING", "default": "auto",
             "description": "auto (CUDA_VISIBLE_DEVICES applies), cpu, cuda or cuda:N"},
        ],
        "steps": [
            _step("Keyframes", spec_json, ["keyframes", *device]),
            _step("Propagate", spec_json, ["propagate", "--chunk", "{{Task.Param.Chunk}}", *device],
                  dependencies=[{"dependsOn": "Keyframes"}],
                  parameterSpace={"taskParameterDefinitions": [
                      {"name": "Chunk", "type": "INT", "range": f"0-{len(spec.chunks) - 1}"}]}),
            _step("Assemble", spec_json, ["assemble"], dependencies=[{"dependsOn": "Propagate"}]),
        ],
    }


def check_template(template: dict) -> None:
    """Raise UserError unless openjd-model accepts the template."""
    from openjd.model import DecodeValidationError, decode_job_template

    try:
        decode_job_template(template=template)
    except DecodeValidationError as exc:
        raise UserError(f"the farm job template is not valid Open Job Description: {exc}".rstrip(".") + ".") from None


def write_bundle(bundle: Path, spec: FarmSpec, *, shot: Path, out: Path, job_dir: Path, command: str,
                 device: str = "auto", name: str | None = None) -> dict[str, Path]:
    """Write the three bundle files; returns their paths by role."""
    template = job_template(spec, name or f"ipfacediff {shot.name}")
    check_template(template)
    if bundle.exists() and not bundle.is_dir():
        raise UserError(f"--bundle {bundle} is a file; name a folder.")
    bundle.mkdir(parents=True, exist_ok=True)
    flat = {"Shot": str(shot), "OutputDir": str(out), "JobDir": str(job_dir), "Ipfacediff": command, "Device": device}
    values = {"parameterValues": [{"name": k, "value": v} for k, v in flat.items()]}
    assets = {"assetReferences": {"inputs": {"directories": [], "filenames": [str(shot)]} if shot.is_file() else
                                  {"directories": [str(shot if shot.is_dir() else shot.parent)], "filenames": []},
                                  "outputs": {"directories": [str(out), str(job_dir)]}}}
    files = {"template": bundle / "template.yaml", "parameters": bundle / "parameter_values.yaml",
             "assets": bundle / "asset_references.yaml", "openjd_run": bundle / "job_parameters.yaml"}
    for key, content in (("template", template), ("parameters", values), ("assets", assets), ("openjd_run", flat)):
        files[key].write_text(yaml.safe_dump(content, sort_keys=False, allow_unicode=True, width=1 << 16))
    return files
