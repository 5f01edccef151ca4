"""Entry points for reading: any source -> `Clip` (`read_frames`) or `ClipInfo` (`probe`).

Decoders' own console output (OpenCV, FFmpeg, libpng warnings) is kept off stderr; when
decoding fails, its last line ends our sentence.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from engine.errors import UserError
from engine.io import sequence, video
from engine.io.clip import Clip, ClipInfo, opaque, split_rgb
from engine.io.images import IMAGE_EXTS, read_image
from engine.io.native import native_stderr

Source = str | os.PathLike
# Every file a clip can be read from: videos and still images (folders and patterns aside).
MEDIA_EXTS = video.VIDEO_EXTS + IMAGE_EXTS


def read_frames(source: Source, frame_range: tuple[int, int] | None = None) -> Clip:
    """Decode a video, image sequence (folder or printf pattern) or single image into a Clip.

    `frame_range=(a, b)` is inclusive; it uses file frame numbers for sequences and 0-based
    indices for videos. A single image is frame 0.
    """
    frame_range = _check_range_type(frame_range)
    kind, found = _locate(source)
    if kind == "video":
        return _decode(video.read_video, found, frame_range)
    chosen = _select(found, frame_range, str(source))
    frames, alphas, source_dtype, gray = [], [], None, False
    for number, path in chosen:
        image = _decode(read_image, path)
        rgb, alpha = split_rgb(image, str(path))
        one_channel = image.ndim == 2 or image.shape[2] < 3
        if frames:
            _check_same(frames[0], rgb, chosen[0][1], path)
            if one_channel != gray:
                raise UserError(f"{path.name} and {chosen[0][1].name} differ in colour channels (gray and RGB); "
                                "all frames of a clip must have the same.")
        else:
            source_dtype, gray = str(image.dtype), one_channel
        frames.append(rgb)
        alphas.append(alpha)
    if all(a is None for a in alphas):
        alpha_list = None
    else:
        alpha_list = [a if a is not None else opaque(f) for a, f in zip(alphas, frames)]
    naming = None if kind == "still" else sequence.naming(chosen, str(source) if kind == "pattern" else None)
    return Clip(frames=frames, first=chosen[0][0], fps=None, alpha=alpha_list, source_dtype=source_dtype,
                gray=gray, naming=naming)


def probe(source: Source) -> ClipInfo:
    """Frame count, size, dtype, fps (videos) and first frame number, decoding at most one image."""
    kind, found = _locate(source)
    if kind == "video":
        return _decode(video.probe_video, found)
    image = _decode(read_image, found[0][1])
    rgb, alpha = split_rgb(image, str(found[0][1]))
    height, width = rgb.shape[:2]
    return ClipInfo(
        frame_count=len(found),
        width=width,
        height=height,
        dtype=str(rgb.dtype),
        source_dtype=str(image.dtype),
        first=found[0][0],
        fps=None,
        has_alpha=alpha is not None,
    )


def _decode(call, *args):
    """`call(*args)` with the decoders' console output captured; a UserError it raises gets
    the decoder's last line as its reason."""
    with native_stderr() as log:
        try:
            return call(*args)
        except UserError as error:
            failure = str(error)
    raise UserError(f"{failure.rstrip('.')} (the decoder said: {log.last})." if log.last else failure) from None


def _locate(source: Source) -> tuple[str, Path | list[tuple[int, Path]]]:
    path = Path(os.fspath(source))
    if not path.exists() and sequence.is_pattern(str(path)):
        return "pattern", sequence.from_pattern(str(path))
    if not path.exists():
        raise UserError(f"{path} does not exist.")
    if path.is_dir():
        return "folder", sequence.from_folder(path)
    ext = path.suffix.lower()
    if ext in video.VIDEO_EXTS:
        return "video", path
    if ext in IMAGE_EXTS:
        return "still", [(0, path)]
    raise UserError(
        f"{path.name} has an unsupported extension; use a video ({', '.join(video.VIDEO_EXTS)}) "
        f"or images ({', '.join(IMAGE_EXTS)})."
    )


def _check_range_type(frame_range) -> tuple[int, int] | None:
    if frame_range is None:
        return None
    try:
        first, last = (int(n) for n in frame_range)
    except (TypeError, ValueError):
        raise UserError(f"The frame range {frame_range!r} must be two whole numbers (first, last).") from None
    if first > last:
        raise UserError(f"The frame range {first}-{last} is empty; its first frame comes after its last.")
    return first, last


def _select(found: list[tuple[int, Path]], frame_range: tuple[int, int] | None, source: str) -> list[tuple[int, Path]]:
    low, high = found[0][0], found[-1][0]
    first, last = frame_range or (low, high)
    if first < low or last > high:
        raise UserError(f"Frame range {first}-{last} is outside the available frames {low}-{high} of {source}.")
    chosen = [(n, p) for n, p in found if first <= n <= last]
    if len(chosen) != last - first + 1:
        have = {n for n, _ in chosen}
        gap = next(n for n in range(first, last + 1) if n not in have)
        raise UserError(f"Frame {gap} is missing from {source}; sequences must have no gaps.")
    return chosen


def _check_same(reference: np.ndarray, frame: np.ndarray, reference_path: Path, path: Path) -> None:
    if frame.shape != reference.shape:
        raise UserError(
            f"{path.name} is {frame.shape[1]}x{frame.shape[0]} but {reference_path.name} is "
            f"{reference.shape[1]}x{reference.shape[0]}; all frames of a clip must have the same size."
        )
    if frame.dtype != reference.dtype:
        raise UserError(
            f"{path.name} holds {frame.dtype} samples but {reference_path.name} holds {reference.dtype}; "
            "all frames of a clip must have the same bit depth."
        )
