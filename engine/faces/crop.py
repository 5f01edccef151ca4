"""Crop geometry: per-frame square crop boxes from landmarks, smoothed over time, and the
resampling between frame and model-resolution crop.

In: the faces of one track (one per frame), the crop scale and smoothing strength. Out:
boxes N×3 (centre x, centre y, side in frame pixels); `extract(frame, box, res)` -> res×res×3
float32 RGB crop (0..1 clipped); `frame_to_crop(box, res, x0, y0)` the affine map used by
both extraction and paste-back, so the two are exact inverses of each other.

Framing follows FFHQ's alignment (Karras et al.): centre = eye midpoint + 0.1 × eye-to-mouth,
side = 2 × max(2.0 × eye distance, 1.8 × eye-to-mouth) × scale: the whole head with hair and
forehead, robust to roll and profile. The crop is axis-aligned (no roll): nothing to jitter
in angle and the paste-back is a scale and a shift.
"""

from __future__ import annotations

import cv2
import numpy as np

from engine.faces.detect import Face
from engine.faces.image import to_float_rgb
from engine.faces.smooth import smooth


def raw_box(face: Face, scale: float = 1.0) -> np.ndarray:
    """(cx, cy, side) of one face, unsmoothed."""
    k = face.kps
    eyes = (k[0] + k[1]) / 2
    mouth = (k[3] + k[4]) / 2
    e2m = mouth - eyes
    centre = eyes + 0.1 * e2m
    side = 2.0 * max(2.0 * float(np.linalg.norm(k[1] - k[0])), 1.8 * float(np.linalg.norm(e2m)))
    side = max(side, 0.9 * face.size)  # degenerate landmarks: fall back on the box
    return np.array([centre[0], centre[1], side * scale])


def track_boxes(faces: list[Face], scale: float = 1.0, smoothing: float = 1.0) -> np.ndarray:
    """Smoothed boxes for consecutive frames of one track (see `engine.faces.smooth`)."""
    raw = np.array([raw_box(f, scale) for f in faces])
    unit = float(np.median(raw[:, 2]))
    x = np.column_stack([raw[:, 0] / unit, raw[:, 1] / unit, np.log(raw[:, 2])])
    y = smooth(x, smoothing)
    return np.column_stack([y[:, 0] * unit, y[:, 1] * unit, np.exp(y[:, 2])])


def frame_to_crop(box: np.ndarray, res: int, x0: float = 0.0, y0: float = 0.0) -> np.ndarray:
    """2×3 affine taking (region) pixel coordinates to crop pixel coordinates, where the
    region starts at frame pixel (x0, y0); pixel coordinates are pixel centres."""
    cx, cy, side = box
    s = res / side
    c = (res - 1) / 2.0
    return np.array([[s, 0.0, s * (x0 - cx) + c], [0.0, s, s * (y0 - cy) + c]])


def region(box: np.ndarray, shape: tuple[int, ...], pad: float = 3.0) -> tuple[int, int, int, int] | None:
    """Integer frame region (x0, y0, x1, y1) covering the crop box plus `pad` pixels, clipped
    to the frame; None when the box lies outside."""
    cx, cy, side = box
    h = side / 2 + pad
    x0, y0 = max(int(np.floor(cx - h)), 0), max(int(np.floor(cy - h)), 0)
    x1, y1 = min(int(np.ceil(cx + h)) + 1, shape[1]), min(int(np.ceil(cy + h)) + 1, shape[0])
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return x0, y0, x1, y1


def antialias(image: np.ndarray, shrink: float) -> np.ndarray:
    """Gaussian pre-filter before resampling by `shrink` (< 1 shrinks), as scikit-image does."""
    if shrink >= 1.0:
        return image
    sigma = (1.0 / shrink - 1.0) / 2.0
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)


def extract(frame: np.ndarray, box: np.ndarray, res: int, layout: str | None = None) -> np.ndarray:
    """The res×res×3 float32 crop (RGB 0..1) of `box`; parts outside the frame repeat its
    edge. Deterministic: paste-back recomputes it to paste the edit as a change."""
    reg = region(box, frame.shape)
    if reg is None:  # the whole box is outside the frame: a crop of the nearest edge
        reg = (0, 0, frame.shape[1], frame.shape[0])
    x0, y0, x1, y1 = reg
    src = antialias(to_float_rgb(frame[y0:y1, x0:x1], layout), res / box[2])
    m = frame_to_crop(box, res, x0, y0)
    crop = cv2.warpAffine(src, m, (res, res), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return np.clip(crop, 0.0, 1.0)


def full_size(h: int, w: int, res: int, multiple: int = 64) -> tuple[tuple[int, int], tuple[int, int]]:
    """`full` mode: (scaled h, w) with the long side `res`, and the padded (H, W), multiples
    of `multiple`."""
    k = res / max(h, w)
    sh, sw = max(1, round(h * k)), max(1, round(w * k))
    ph, pw = -(-sh // multiple) * multiple, -(-sw // multiple) * multiple
    return (sh, sw), (ph, pw)


def extract_full(frame: np.ndarray, res: int, layout: str | None = None, multiple: int = 64) -> np.ndarray:
    """`full` mode: the whole frame resized (long side `res`) and reflect-padded at the right
    and bottom to multiples of `multiple`; float32 RGB 0..1."""
    h, w = frame.shape[:2]
    (sh, sw), (ph, pw) = full_size(h, w, res, multiple)
    rgb = to_float_rgb(frame, layout)
    interp = cv2.INTER_AREA if sh < h else cv2.INTER_CUBIC
    small = np.clip(cv2.resize(rgb, (sw, sh), interpolation=interp), 0.0, 1.0)
    mode = cv2.BORDER_REFLECT_101 if ph - sh < sh and pw - sw < sw else cv2.BORDER_REPLICATE
    return cv2.copyMakeBorder(small, 0, ph - sh, 0, pw - sw, mode)
