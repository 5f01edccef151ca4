"""Real face photos that ship inside installed packages, and synthetic clips made from them.

In: a photo name and motion parameters. Out: `photo(name)` -> RGB uint8 image; `clip(...)`
-> (frames, truth): frames with the faces placed in a large canvas under synthetic head
motion (rotation, zoom, translation, brightness, blur, JPEG), and per frame, per actor the
face centre and size where they were put (ground truth for tests and benchmarks).
Used by the face tests, the face benchmark and demos; no download.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

# Face centre (x, y) and face size (MTCNN box height, px) in each packaged photo.
FACES = {
    "astronaut": ((225.0, 119.0), 110.0),
    "grace_hopper": ((270.0, 232.0), 222.0),
    "cameraman": ((228.5, 159.0), 78.0),
    "tom_hanks": ((98.5, 116.0), 120.0),  # in the padded 224² version `photo` returns
}


def _insightface_image(name: str) -> Path | None:
    spec = importlib.util.find_spec("insightface")  # locate only: importing needs onnxruntime
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "images" / name
    return path if path.exists() else None


def available() -> list[str]:
    """Names of the single-face photos present here (the first three always are)."""
    names = ["astronaut", "grace_hopper", "cameraman"]
    if _insightface_image("Tom_Hanks_54745.png"):
        names.append("tom_hanks")
    return names


def photo(name: str) -> np.ndarray:
    """A packaged photo as RGB uint8: astronaut (scikit-image), grace_hopper (matplotlib),
    cameraman (scikit-image, gray), tom_hanks and friends (insightface's data, when installed)."""
    if name == "astronaut":
        from skimage import data

        return data.astronaut()
    if name == "cameraman":
        from skimage import data

        return cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2RGB)
    if name == "grace_hopper":
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    elif name in ("tom_hanks", "friends"):
        path = _insightface_image("Tom_Hanks_54745.png" if name == "tom_hanks" else "t1.jpg")
        if path is None:
            raise FileNotFoundError(f"photo '{name}' ships with insightface, which is not installed")
    else:
        raise KeyError(f"unknown photo '{name}'")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if name == "tom_hanks":  # a tight 112² crop: give it room so detectors see a whole head
        image = cv2.copyMakeBorder(image, 56, 56, 56, 56, cv2.BORDER_REPLICATE)
    return image


@dataclass
class Actor:
    """One face in a synthetic clip: which photo, where its face goes, how big, how it moves."""

    name: str
    at: tuple[float, float]  # face centre in the frame (x, y)
    face_px: float = 300.0  # face size in the frame
    rotate: float = 0.0  # degrees of sinusoidal roll
    zoom: float = 0.0  # relative sinusoidal scale change
    shift: tuple[float, float] = (0.0, 0.0)  # px of sinusoidal translation (x, y)
    period: float = 24.0  # frames per motion cycle
    image: np.ndarray | None = field(default=None, repr=False)


def clip(actors: list[Actor], n_frames: int, size: tuple[int, int] = (1080, 1920), *, brightness: float = 0.0,
         blur: dict[int, float] | None = None, jpeg: int | None = None, noise: float = 0.0,
         seed: int = 0) -> tuple[list[np.ndarray], list[list[dict]]]:
    """Frames (uint8 RGB, size H×W) with each actor's photo warped in under its motion, and
    truth[frame][actor] = {"centre": (x, y), "size": px}. `blur` maps frame index -> motion
    blur length in px; `brightness` is a relative sinusoidal gain; `jpeg` a quality."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    background = (70 + 40 * np.sin(xx / 97.0) * np.cos(yy / 131.0))[:, :, None] * np.array([1.0, 0.95, 0.9], np.float32)
    background = np.clip(background, 0, 255).astype(np.uint8)
    frames, truth = [], []
    for i in range(n_frames):
        frame = background.copy()
        where = []
        for actor in actors:
            image = actor.image if actor.image is not None else photo(actor.name)
            (fx, fy), fsize = FACES.get(actor.name, ((image.shape[1] / 2, image.shape[0] / 2), image.shape[0] / 2))
            phase = 2 * np.pi * i / actor.period
            scale = actor.face_px / fsize * (1 + actor.zoom * np.sin(phase))
            cx = actor.at[0] + actor.shift[0] * np.sin(phase)
            cy = actor.at[1] + actor.shift[1] * np.sin(phase + 1.0)
            m = cv2.getRotationMatrix2D((fx, fy), actor.rotate * np.sin(phase), scale)
            m[:, 2] += (cx - fx, cy - fy)
            cv2.warpAffine(image, m, (w, h), dst=frame, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)
            where.append({"centre": (float(cx), float(cy)), "size": float(fsize * scale)})
        if brightness:
            gain = 1 + brightness * np.sin(2 * np.pi * i / 17.0)
            frame = np.clip(frame.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        if blur and blur.get(i):
            k = max(1, int(blur[i]))
            kernel = np.zeros((k, k), np.float32)
            kernel[k // 2, :] = 1.0 / k
            frame = cv2.filter2D(frame, -1, kernel)
        if noise:
            frame = np.clip(frame + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8)
        if jpeg:
            ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg)])
            frame = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        frames.append(frame)
        truth.append(where)
    return frames, truth
