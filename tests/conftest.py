"""Shared fixtures: tiny random-weight models (built in code, no download) and small clips."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_editor():
    from engine.editor import Editor

    return Editor("tiny")


@pytest.fixture
def clip16() -> list[np.ndarray]:
    """16 frames of 64×64: a textured image drifting one pixel a frame (no two tokens equal)."""
    rng = np.random.default_rng(7)
    base = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    return [np.ascontiguousarray(base[:, i:i + 64]) for i in range(16)]
