"""`write_frames`: arrays or a Clip -> out_dir/frame_%06d.{png,tif,exr} (+ optional mp4), replaced atomically."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from engine.errors import UserError
from engine.io import images, video as video_io
from engine.io.clip import Clip

_EXTS = {"png": ".png", "tif": ".tif", "tiff": ".tif", "exr": ".exr"}


def write_frames(
    frames: Clip | Iterable[np.ndarray],
    out_dir: str | os.PathLike,
    *,
    start: int = 0,
    fmt: str = "png",
    video: str | os.PathLike | None = None,
    fps: float = 24.0,
) -> list[Path]:
    """Write frames as out_dir/frame_%06d.<ext> numbered from `start`; return the paths in order.

    Frames are H×W, H×W×3 (RGB) or H×W×4 (RGBA) arrays; a Clip's alpha is written as a fourth
    channel. Dtypes: png uint8/uint16 (floats become 16-bit), tif uint8/uint16/float32, exr
    float16/float32 (integers become 0-1 float32). `video` also writes an 8-bit H.264 file.
    Everything is written to temporary files beside the targets first; earlier frame_*.<ext>
    files in out_dir are replaced only once all new files exist, so a failure changes nothing.
    """
    ext = _EXTS.get(str(fmt).lower().lstrip("."))
    if ext is None:
        raise UserError(f"The output format {fmt!r} is not supported; use png, tif or exr.")
    if not isinstance(start, (int, np.integer)) or start < 0:
        raise UserError(f"The first output frame number must be a whole number of 0 or more, not {start}.")
    if not fps or fps <= 0:
        raise UserError(f"The frame rate must be above 0, not {fps}.")
    arrays = _collect(frames)
    encoded = [_for_format(a, ext) for a in arrays]
    out_dir = Path(out_dir).absolute()
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} exists and is not a folder.")
    names = [f"frame_{start + i:06d}{ext}" for i in range(len(encoded))]
    staging = tmp_video = None
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
        for name, image in zip(names, encoded):
            images.write_image(staging / name, image)
        if video is not None:
            video = Path(video)
            video.parent.mkdir(parents=True, exist_ok=True)
            handle, tmp_name = tempfile.mkstemp(prefix=f".{video.stem}.tmp-", suffix=video.suffix, dir=video.parent)
            os.close(handle)
            tmp_video = Path(tmp_name)
            video_io.write_video(tmp_video, arrays, fps)
        _swap_in(staging, out_dir, names, ext)
        if tmp_video is not None:
            os.replace(tmp_video, video)
    except OSError as error:
        raise UserError(f"Could not write frames to {out_dir}: {error}.") from error
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if tmp_video is not None:
            tmp_video.unlink(missing_ok=True)
    return [out_dir / name for name in names]


def _collect(frames: Clip | Iterable[np.ndarray]) -> list[np.ndarray]:
    """Validated list of H×W or H×W×{3,4} arrays, one size for all."""
    if isinstance(frames, Clip):
        arrays = list(frames.frames)
        if frames.alpha is not None:
            arrays = [np.dstack([f, a.astype(f.dtype)]) for f, a in zip(arrays, frames.alpha)]
    elif isinstance(frames, np.ndarray) and frames.ndim != 4:
        raise UserError(f"Frames must be a list of arrays or one N×H×W×C array, not an array of shape {frames.shape}.")
    else:
        arrays = list(frames)
    if not arrays:
        raise UserError("There are no frames to write.")
    result = []
    for index, frame in enumerate(arrays):
        frame = np.asarray(frame)
        if frame.ndim == 3 and frame.shape[2] == 1:
            frame = frame[:, :, 0]
        if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (3, 4)):
            raise UserError(f"Frame {index} has shape {frame.shape}; frames must be H×W, H×W×3 or H×W×4.")
        if result and frame.shape[:2] != result[0].shape[:2]:
            raise UserError(
                f"Frame {index} is {frame.shape[1]}x{frame.shape[0]} but frame 0 is "
                f"{result[0].shape[1]}x{result[0].shape[0]}; all frames must have the same size."
            )
        result.append(frame)
    return result


def _for_format(frame: np.ndarray, ext: str) -> np.ndarray:
    """Convert to a dtype the format stores: see `write_frames`."""
    kind = frame.dtype.kind
    if kind not in "uf" or (kind == "u" and frame.dtype not in (np.uint8, np.uint16)):
        raise UserError(f"Frames of type {frame.dtype} cannot be written; use uint8, uint16 or float32.")
    if ext == ".png":
        if kind == "f":
            return (np.nan_to_num(np.clip(frame.astype(np.float32), 0.0, 1.0)) * 65535.0 + 0.5).astype(np.uint16)
        return frame
    if ext == ".tif":
        return frame.astype(np.float32) if kind == "f" else frame
    if kind == "u":
        return frame.astype(np.float32) / np.float32(np.iinfo(frame.dtype).max)
    return frame if frame.dtype in (np.float16, np.float32) else frame.astype(np.float32)


_FRAME_FILE = re.compile(r"frame_\d+")


def _swap_in(staging: Path, out_dir: Path, names: list[str], ext: str) -> None:
    """Move staged files into out_dir, first moving its earlier frame_*<ext> files aside; undo on failure."""
    if not out_dir.exists():
        os.rename(staging, out_dir)
        return
    earlier = [p.name for p in out_dir.iterdir() if p.suffix == ext and _FRAME_FILE.fullmatch(p.stem)]
    aside = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
    moved_aside, moved_in = [], []
    try:
        for name in earlier:
            os.replace(out_dir / name, aside / name)
            moved_aside.append(name)
        for name in names:
            os.replace(staging / name, out_dir / name)
            moved_in.append(name)
    except OSError:
        for name in moved_in:
            os.replace(out_dir / name, staging / name)
        for name in moved_aside:
            os.replace(aside / name, out_dir / name)
        aside.rmdir()
        raise
    shutil.rmtree(aside)
