"""Frame normalisation for face work: any frame the engine may meet -> what detectors and
crops need, and back.

In: one frame (H×W gray, H×W×1/3/4, uint8/uint16/float of any range; or junk). Out:
`inspect(frame)` -> `FrameView` (an RGB uint8 image for detectors, or a reason the frame
cannot be used); `to_float_rgb`/`restore` convert a region to float32 RGB 0..1 and back
to the frame's own layout, dtype and range. Nothing here raises on a bad frame: the caller
records the reason per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], np.float32)
MIN_SIDE = 16  # smaller frames cannot hold a face worth editing


@dataclass
class FrameView:
    """What the face code knows about one input frame."""

    rgb8: np.ndarray | None  # H×W×3 uint8 for detection, None when unusable
    layout: str  # "rgb", "rgba", "gray", "gray1", or "invalid"
    note: str = ""  # why it is unusable, or what was converted

    @property
    def ok(self) -> bool:
        return self.rgb8 is not None


def inspect(frame) -> FrameView:
    """Classify a frame and make its 8-bit RGB view (never raises)."""
    try:
        a = np.asarray(frame)
    except Exception as exc:  # noqa: BLE001 - anything that is not array-like
        return FrameView(None, "invalid", f"not an image array ({type(exc).__name__})")
    if a.dtype.kind not in "uif" or a.dtype.itemsize > 8:
        return FrameView(None, "invalid", f"unsupported sample type {a.dtype}")
    if a.ndim == 2:
        layout = "gray"
    elif a.ndim == 3 and a.shape[2] == 1:
        layout = "gray1"
    elif a.ndim == 3 and a.shape[2] == 3:
        layout = "rgb"
    elif a.ndim == 3 and a.shape[2] == 4:
        layout = "rgba"
    else:
        return FrameView(None, "invalid", f"unsupported shape {a.shape}; expected gray, RGB or RGBA")
    if min(a.shape[:2]) < MIN_SIDE:
        return FrameView(None, "invalid", f"frame too small ({a.shape[1]}×{a.shape[0]})")
    rgb8 = _rgb8(a, layout)
    note = {"gray": "gray frame", "gray1": "gray frame", "rgba": "alpha kept", "rgb": ""}[layout]
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        note = (note + "; " if note else "") + "non-finite samples"
    return FrameView(rgb8, layout, note)


def _rgb8(a: np.ndarray, layout: str) -> np.ndarray:
    """8-bit RGB view for detectors; no copy for 8-bit RGB frames."""
    if a.ndim == 3 and layout == "gray1":
        a = a[:, :, 0]
    elif layout == "rgba":
        a = a[:, :, :3]
    if a.dtype == np.uint8:
        x = a
    elif a.dtype == np.uint16:
        x = cv2.convertScaleAbs(a, alpha=255.0 / 65535.0)
    else:
        f = np.nan_to_num(a.astype(np.float32, copy=False), nan=0.0, posinf=1.0, neginf=0.0)
        x = cv2.convertScaleAbs(np.clip(f, 0.0, 1.0), alpha=255.0)
    if x.ndim == 2:
        return cv2.cvtColor(np.ascontiguousarray(x), cv2.COLOR_GRAY2RGB)
    return np.ascontiguousarray(x)


def scale_of(dtype: np.dtype) -> float:
    """Full-scale value of a sample type: 255, 65535, or 1.0 for floats (and signed ints' max)."""
    dtype = np.dtype(dtype)
    return float(np.iinfo(dtype).max) if dtype.kind in "ui" else 1.0


def to_float_rgb(region: np.ndarray, layout: str | None = None) -> np.ndarray:
    """H×W(×C) region of a frame -> float32 RGB in the frame's 0..1 scale (floats unclipped,
    non-finite values zeroed)."""
    layout = layout or layout_of(region)
    x = region.astype(np.float32)
    if region.dtype.kind in "ui":
        x /= np.float32(scale_of(region.dtype))  # divide (not × 1/255): the editor's exact values
    else:
        x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=0.0)
    if layout == "gray":
        x = np.repeat(x[:, :, None], 3, axis=2)
    elif layout == "gray1":
        x = np.repeat(x, 3, axis=2)
    elif layout == "rgba":
        x = x[:, :, :3]
    return np.ascontiguousarray(x)


def layout_of(a: np.ndarray) -> str:
    if a.ndim == 2:
        return "gray"
    return {1: "gray1", 3: "rgb", 4: "rgba"}.get(a.shape[2], "invalid")


def write_back(frame: np.ndarray, rgb: np.ndarray, where: np.ndarray, y0: int, x0: int) -> None:
    """Write float RGB `rgb` (frame scale, region at (y0, x0)) into `frame` in place, only at
    pixels where `where` is True, converting to the frame's layout and dtype. Gray frames get
    the luma of the colour; an alpha channel is left alone."""
    h, w = where.shape
    layout = layout_of(frame)
    if layout in ("gray", "gray1"):
        values = rgb @ LUMA
    else:
        values = rgb
    if frame.dtype.kind in "ui":
        top = scale_of(frame.dtype)
        values = np.clip(np.rint(values * top), np.iinfo(frame.dtype).min, top)
    values = values.astype(frame.dtype)
    if layout == "gray":
        np.copyto(frame[y0:y0 + h, x0:x0 + w], values, where=where)
    elif layout == "gray1":
        np.copyto(frame[y0:y0 + h, x0:x0 + w, 0], values, where=where)
    else:
        np.copyto(frame[y0:y0 + h, x0:x0 + w, :3], values, where=where[:, :, None])
