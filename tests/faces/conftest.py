"""Face-test fixtures: real faces from packaged photos (engine.faces.samples) placed in
1920×1080 frames under synthetic head motion; detector and embedder loaded once."""

from __future__ import annotations

import numpy as np
import pytest

from engine.faces import samples
from engine.faces.samples import Actor


@pytest.fixture(scope="session")
def detector():
    from engine.faces.detect import load_detector

    return load_detector("mtcnn")


@pytest.fixture(scope="session")
def facenet():
    from engine.metrics.embed import load_embedder

    return load_embedder("facenet")


@pytest.fixture(scope="session")
def moving_clip():
    """12 frames: the astronaut rolling ±10°, zooming ±15 %, moving ±60/30 px, brightness
    ±20 %, motion blur on two frames, JPEG 60."""
    return samples.clip([Actor("astronaut", (760, 520), 320, rotate=10, zoom=0.15, shift=(60, 30), period=12)],
                        12, brightness=0.2, blur={4: 9, 9: 17}, jpeg=60, noise=2)


@pytest.fixture(scope="session")
def moving_plan(moving_clip, detector):
    from engine.faces import prepare
    from engine.settings import Settings

    return prepare(moving_clip[0], Settings(), detector=detector)


@pytest.fixture(scope="session")
def two_faces():
    """10 frames: the astronaut (large, left) and Grace Hopper (smaller, right), both moving."""
    return samples.clip([Actor("astronaut", (600, 560), 330, rotate=4, shift=(20, 10), period=10),
                         Actor("grace_hopper", (1420, 500), 230, zoom=0.05, shift=(15, 10), period=10)],
                        10, jpeg=85, noise=2)[0]


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak ** 2 / mse)
