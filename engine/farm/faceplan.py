"""The shot's face plan in the job folder, so every task pastes with the same crops.

In: the `FacePlan` the Keyframes step made (tracks, smoothed boxes, masks, the crops). Out:
`face_plan.pkl` (the plan without its crops) and `crops.safetensors` (one tensor per crop), so
a Propagate task reads only the crops of its own frames: `load` gives the plan back without
crops, `read_crops` reads those asked for.
"""

from __future__ import annotations

import dataclasses
import pickle

from safetensors import safe_open
from safetensors.numpy import save_file

from engine.errors import UserError
from engine.farm.spec import JobFolder


def save(plan, job: JobFolder) -> int:
    """Write the plan and its crops (each file to a temp name, then renamed); returns the bytes."""
    job.root.mkdir(parents=True, exist_ok=True)
    tmp_crops, tmp_plan = (p.with_name(f".{p.name}.tmp") for p in (job.crops, job.face_plan))
    save_file({str(k): crop for k, crop in enumerate(plan.crops)}, str(tmp_crops))
    tmp_plan.write_bytes(pickle.dumps(dataclasses.replace(plan, crops=[None] * len(plan.crops))))
    tmp_crops.replace(job.crops)
    tmp_plan.replace(job.face_plan)
    return job.crops.stat().st_size + job.face_plan.stat().st_size


def load(job: JobFolder):
    """The plan, its crops not read yet (None)."""
    if not job.face_plan.exists() or not job.crops.exists():
        raise UserError(f"{job.root} holds no keyframe data: run the Keyframes step first.")
    return pickle.loads(job.face_plan.read_bytes())


def read_crops(job: JobFolder, plan, indices: list[int] | None = None):
    """`plan` with the crops at `indices` (all when None) read back; returns it."""
    with safe_open(str(job.crops), framework="np") as f:
        for k in range(len(plan.crops)) if indices is None else indices:
            plan.crops[k] = f.get_tensor(str(k))
    return plan
