"""Frames to and from the model's pixels.

In: a clip's frames (H×W×3 numpy arrays, uint8, uint16 or float). Out: `check_clip` (clip-level
input errors), `as_float_frames` (a float32 stack in 0..1 and the input's sample type),
`model_size` / `model_pixels` (the model-sized stack as the VAE takes it) and `to_output` (decoded
images back to the input's size and sample type). Used by the `Editor` and the farm steps.
"""

from __future__ import annotations

from typing import Callable, Sequence

import cv2
import numpy as np
import torch

from engine.errors import UserError
from engine.prompts import check_prompt
from engine.settings import Settings


def as_float_frames(frames: Sequence[np.ndarray]) -> tuple[np.ndarray, np.dtype]:
    """Validate and stack to float32 [N, H, W, 3] in 0..1 (uint8, uint16 or float in);
    returns the input dtype too, so the output keeps it."""
    one_size(frames, lambda f: np.asarray(f).shape)
    first = np.asarray(frames[0])
    if first.ndim != 3 or first.shape[2] != 3:
        raise UserError(f"frames must be H×W×3 RGB arrays; got shape {first.shape}.")
    if first.dtype in (np.uint8, np.uint16):
        stack = np.stack(frames).astype(np.float32) / np.iinfo(first.dtype).max
    elif first.dtype in (np.float32, np.float64, np.float16):
        stack = np.clip(np.stack(frames).astype(np.float32), 0.0, 1.0)
    else:
        raise UserError(f"frames must be uint8, uint16 or float; got {first.dtype}.")
    return stack, first.dtype


def one_size(frames: Sequence[np.ndarray], shape_of: Callable[[np.ndarray], tuple]) -> None:
    """No frames, or frames whose `shape_of` differs, is a clip-level error."""
    if len(frames) == 0:
        raise UserError("no frames to edit.")
    shapes = {shape_of(f) for f in frames}
    if len(shapes) > 1:
        raise UserError(f"all frames must have the same size; got {sorted(shapes)}.")


def check_clip(frames: Sequence[np.ndarray], prompt: str) -> None:
    """Clip-level input errors (per-frame problems become per-frame statuses instead)."""
    check_prompt(prompt)
    one_size([f for f in frames if isinstance(f, np.ndarray)] or frames, lambda f: np.asarray(f).shape[:2])


def model_size(h: int, w: int, settings: Settings, multiple: int) -> tuple[int, int]:
    if settings.resolution is not None:
        side = max(multiple, round(settings.resolution / multiple) * multiple)
        return side, side
    return max(multiple, round(h / multiple) * multiple), max(multiple, round(w / multiple) * multiple)


def resize(stack: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    if stack.shape[1:3] == (h, w):
        return stack
    interp = cv2.INTER_AREA if h * w < stack.shape[1] * stack.shape[2] else cv2.INTER_CUBIC
    return np.stack([cv2.resize(f, (w, h), interpolation=interp) for f in stack])


def model_pixels(stack: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """A float stack [N, H, W, 3] resized to `size` (h, w), as the VAE takes it: [N, 3, h, w]."""
    return torch.from_numpy(resize(stack, size)).permute(0, 3, 1, 2)


def to_output(images: np.ndarray, size: tuple[int, int], dtype: np.dtype) -> list[np.ndarray]:
    """Decoded float images [N, h, w, 3] back to the input's size and sample type."""
    images = resize(images, size)
    if dtype in (np.uint8, np.uint16):
        top = np.iinfo(dtype).max
        return [np.clip(np.rint(f * top), 0, top).astype(dtype) for f in images]
    return [f.astype(np.float32) for f in images]
