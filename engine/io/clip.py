"""Clip containers and channel normalisation: any decoded image array -> RGB frame (+ alpha)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.errors import UserError

#: dtypes frames are kept in; float16 and float64 become float32.
FRAME_DTYPES = (np.uint8, np.uint16, np.float32)


@dataclass
class Clip:
    """Decoded frames, each H×W×3 RGB (uint8, uint16 or float32), numbered from `first`.

    `alpha` is a list of H×W arrays (same dtype as the frames) when the source had alpha,
    else None. `source_dtype` is the sample type stored on disk ("uint8", "uint16",
    "float16" or "float32"; None means the frames' dtype); half EXR frames are widened to
    float32 in `frames`. `gray` says the source had one colour channel (expanded to RGB here).
    `naming` is an image sequence's file-name pattern without extension (`shot.%04d`), else None.
    """

    frames: list[np.ndarray]
    first: int = 0
    fps: float | None = None
    alpha: list[np.ndarray] | None = None
    source_dtype: str | None = None
    gray: bool = False
    naming: str | None = None

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def last(self) -> int:
        return self.first + len(self.frames) - 1

    @property
    def dtype(self) -> np.dtype:
        return self.frames[0].dtype

    @property
    def bit_depth(self) -> int:
        """Bits per sample on disk: 8, 16 (also half float) or 32."""
        return np.dtype(self.source_dtype or self.dtype).itemsize * 8

    @property
    def width(self) -> int:
        return self.frames[0].shape[1]

    @property
    def height(self) -> int:
        return self.frames[0].shape[0]


@dataclass(frozen=True)
class ClipInfo:
    """What `probe` learns about a source without decoding all of it."""

    frame_count: int
    width: int
    height: int
    dtype: str  # dtype `read_frames` returns: uint8, uint16 or float32
    source_dtype: str  # as stored: uint8, uint16, float16 or float32
    first: int = 0
    fps: float | None = None
    has_alpha: bool = False

    @property
    def last(self) -> int:
        return self.first + self.frame_count - 1


def split_rgb(image: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """RGB-ordered H×W, H×W×1..4 array -> (H×W×3 frame, H×W alpha or None), dtype normalised."""
    if image.dtype in (np.float16, np.float64):
        image = image.astype(np.float32)
    if image.dtype not in FRAME_DTYPES:
        raise UserError(f"{name} holds {image.dtype} samples; only 8/16-bit integer and float images are supported.")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise UserError(f"{name} has an unsupported channel layout {image.shape}; expected gray, RGB or RGBA.")
    channels = image.shape[2]
    alpha = image[:, :, -1].copy() if channels in (2, 4) else None
    color = image[:, :, :3] if channels >= 3 else np.repeat(image[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(color), alpha


def opaque(like: np.ndarray) -> np.ndarray:
    """A fully opaque H×W alpha matching `like`'s size and dtype."""
    full = np.iinfo(like.dtype).max if like.dtype.kind == "u" else 1.0
    return np.full(like.shape[:2], full, dtype=like.dtype)
