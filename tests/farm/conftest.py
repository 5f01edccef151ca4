"""A small shot (10 PNG frames numbered from 1001; full mode: the whole frame is edited), the
tiny preset at few steps with several keyframe attention groups, and helpers that run the
farm steps in this process."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.farm.spec import FarmSpec, JobFolder
from engine.settings import Settings

SETTINGS = Settings(steps=3, keyframe_interval=2, keyframe_window=2, keyframe_anchors=1, face_mode="full")
FLAGS = ["--steps", "3", "--keyframe-interval", "2", "--keyframe-window", "2", "--keyframe-anchors", "1",
         "--mode", "full"]  # SETTINGS as edit / farm bundle flags
PROMPT = "add glasses"
FIRST, COUNT = 1001, 10
NAME = "frame_edit_%06d"  # what edit and farm bundle name the edited frame_%06d


def write_shot(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    base = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    for i in range(COUNT):
        cv2.imwrite(str(folder / f"frame_{FIRST + i:06d}.png"), np.ascontiguousarray(base[:, i:i + 64]))
    return folder


@pytest.fixture(scope="session")
def shot(tmp_path_factory) -> Path:
    return write_shot(tmp_path_factory.mktemp("farm") / "shot")


def spec(chunk_size: int) -> FarmSpec:
    return FarmSpec(prompt=PROMPT, settings=SETTINGS.to_dict(), first=FIRST, count=COUNT, chunk_size=chunk_size,
                    preset="tiny", name=NAME)


def run_farm(editor, shot: Path, root: Path, chunk_size: int, order=None) -> tuple[Path, JobFolder]:
    """Keyframes, then every chunk (in `order`, default reversed), in this process."""
    from engine.farm import steps
    from engine.farm.status import TaskStatus

    s, out, job = spec(chunk_size), root / "out", JobFolder(root / "job")
    quiet = TaskStatus(io.StringIO())
    steps.keyframes(s, str(shot), out, job, None, quiet, editor=editor)
    for c in order if order is not None else reversed(range(len(s.chunks))):
        steps.propagate(s, c, str(shot), out, job, None, quiet, editor=editor)
    return out, job


def frames_of(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted(folder.glob("frame_*.png"))}


@pytest.fixture(scope="session")
def one_machine(shot, tmp_path_factory) -> dict[str, np.ndarray]:
    """The frames `ipfacediff edit` writes for the shot (same settings, tiny preset)."""
    from engine.cli import main

    out = tmp_path_factory.mktemp("one_machine")
    assert main(["edit", str(shot), "--prompt", PROMPT, "--out", str(out), "--preset", "tiny", "--quiet", *FLAGS]) == 0
    return frames_of(out)


@pytest.fixture(scope="session")
def farm():
    """`farm(editor, shot, root, chunk_size, order=None)` -> (out folder, JobFolder)."""
    return run_farm


@pytest.fixture(scope="session")
def read_pngs():
    return frames_of


@pytest.fixture(scope="session")
def make_spec():
    return spec


@pytest.fixture(scope="session")
def flags() -> list[str]:
    return FLAGS
