"""The face plan in the job folder: a chunk reads only its own crops, and gets them bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import UserError
from engine.faces import prepare
from engine.farm import faceplan
from engine.farm.spec import JobFolder
from engine.settings import Settings


def test_a_chunk_reads_back_only_the_crops_it_asks_for_bit_for_bit(tmp_path):
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(4)]
    plan = prepare(frames, Settings(face_mode="full"), native=64)
    job = JobFolder(tmp_path / "job")
    assert faceplan.save(plan, job) > sum(c.nbytes for c in plan.crops)
    loaded = faceplan.load(job)
    assert loaded.crops == [None] * 4 and loaded.crop_frames == plan.crop_frames and loaded.mode == "full"
    faceplan.read_crops(job, loaded, [1, 3])
    assert loaded.crops[0] is None and loaded.crops[2] is None
    for k in (1, 3):
        assert loaded.crops[k].dtype == plan.crops[k].dtype and np.array_equal(loaded.crops[k], plan.crops[k])


def test_a_job_folder_without_the_plan_says_to_run_the_keyframes_step(tmp_path):
    with pytest.raises(UserError, match="run the Keyframes step first"):
        faceplan.load(JobFolder(tmp_path))
