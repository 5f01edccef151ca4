"""A small face data set made from photos that ship inside installed packages (no download).

In: a folder, how many images, their side. Out: PNG face crops (CelebA-HQ-like framing:
whole head, face centred) of `skimage.data.astronaut()` and matplotlib's
`grace_hopper.jpg`, varied by crop position and scale, flips and colour jitter, plus a
`metadata.jsonl` caption per image. Used by the tests, the benchmark and the docs' demo.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

# (face centre x, y; face size px) in each photo — as measured for engine.faces.samples.
_FACES = {"astronaut": ((225.0, 119.0), 110.0), "grace_hopper": ((270.0, 232.0), 222.0)}
_CAPTIONS = {"astronaut": "a photo of a smiling woman with short brown hair",
             "grace_hopper": "a photo of an old woman with grey hair in a uniform"}


def _photo(name: str) -> np.ndarray:
    if name == "astronaut":
        from skimage import data

        return data.astronaut()
    import matplotlib

    bgr = cv2.imread(str(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"))
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _jitter(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-6, 6)) % 180
    hsv[..., 1] *= rng.uniform(0.75, 1.25)
    out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    out = (out - 128) * rng.uniform(0.8, 1.2) + 128 + rng.uniform(-20, 20)
    return np.clip(out, 0, 255).astype(np.uint8)


def make_face_folder(folder: str | Path, n: int = 16, size: int = 128, seed: int = 0) -> Path:
    """Write `n` face crops (size²) alternating between the two photos; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    photos = {name: _photo(name) for name in _FACES}
    rows = []
    for i in range(n):
        name = list(_FACES)[i % len(_FACES)]
        img = photos[name]
        (cx, cy), face = _FACES[name]
        side = face * rng.uniform(1.8, 2.3)
        cx, cy = cx + rng.uniform(-0.08, 0.08) * face, cy + rng.uniform(-0.08, 0.08) * face
        # affine crop (replicated border where the crop leaves the photo)
        s = size / side
        m = np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]], np.float32)
        crop = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        crop = _jitter(np.ascontiguousarray(crop), rng)
        file = f"{i:03d}_{name}.png"
        cv2.imwrite(str(folder / file), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        rows.append({"file_name": file, "text": _CAPTIONS[name]})
    (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder
