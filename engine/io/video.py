"""Video files: decode with OpenCV (`read_video`, `probe_video`); encode 8-bit H.264 with the
ffmpeg that imageio-ffmpeg ships (`write_video`, into the containers of `VIDEO_OUT_FORMATS`)."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

from engine.errors import UserError
from engine.io.clip import Clip, ClipInfo

VIDEO_EXTS = (".mp4", ".mov", ".mkv", ".avi", ".m4v", ".webm")
VIDEO_OUT_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}
"""Extensions `write_video` writes (H.264 fits these containers) -> ffmpeg's muxer name."""


def _open(path: Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        capture.release()
        raise UserError(f"{path} could not be opened as a video; the file may be corrupt or use an unknown codec.")
    return capture


def probe_video(path: Path) -> ClipInfo:
    """Size, fps and frame count from the container (counted by decoding when the container has none)."""
    capture = _open(path)
    try:
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = capture.get(cv2.CAP_PROP_FPS) or None
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if count <= 0:
            count = 0
            while capture.grab():
                count += 1
    finally:
        capture.release()
    if count <= 0 or width <= 0 or height <= 0:
        raise UserError(f"{path} has no readable video frames; the file may be corrupt.")
    return ClipInfo(count, width, height, "uint8", "uint8", first=0, fps=fps)


def read_video(path: Path, frame_range: tuple[int, int] | None = None) -> Clip:
    """Decode frames `frame_range` (0-based, inclusive; all when None) to RGB uint8."""
    first, last = frame_range if frame_range is not None else (0, None)
    if first < 0:
        info = probe_video(path)
        raise UserError(f"Frame range {first}-{last} is outside the available frames 0-{info.frame_count - 1} of {path}.")
    capture = _open(path)
    frames, index = [], 0
    try:
        fps = capture.get(cv2.CAP_PROP_FPS) or None
        while last is None or index <= last:
            if index < first:
                ok = capture.grab()
            else:
                ok, bgr = capture.read()
                if ok:
                    frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            if not ok:
                break
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise UserError(f"{path} has no readable video frames; the file may be corrupt.")
    if last is not None and index <= last:
        raise UserError(f"Frame range {first}-{last} is outside the available frames 0-{index - 1} of {path}.")
    return Clip(frames=frames, first=first, fps=fps, alpha=None, source_dtype="uint8")


def check_video_path(path: Path) -> None:
    """Refuse, before any work, a video path whose extension `write_video` cannot write."""
    if path.suffix.lower() not in VIDEO_OUT_FORMATS:
        raise UserError(f"the video {path.name} must end in {', '.join(VIDEO_OUT_FORMATS)} (8-bit H.264).")


def write_video(path: Path, frames: Sequence[np.ndarray], fps: float) -> None:
    """Encode RGB/RGBA/gray frames of any supported dtype as 8-bit H.264 (yuv420p; odd sizes padded
    by one pixel) into the container of `path`'s extension; OSError with ffmpeg's last message
    when ffmpeg fails (the caller removes the file)."""
    check_video_path(path)
    height, width = frames[0].shape[:2]
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{width}x{height}", "-r", repr(float(fps)), "-i", "-", "-an", "-c:v", "libx264",
               "-pix_fmt", "yuv420p", "-crf", "16", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
               "-f", VIDEO_OUT_FORMATS[path.suffix.lower()], str(path)]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)
        try:
            with process.stdin as pipe:
                for frame in frames:
                    pipe.write(np.ascontiguousarray(to_rgb8(frame)).data)
        except BrokenPipeError:  # ffmpeg quit early; its exit status and message say why
            pass
        except BaseException:
            process.kill()
            raise
        finally:
            code = process.wait()
        if code != 0:
            log.seek(0)
            lines = log.read().decode(errors="replace").strip().splitlines() or [f"exit status {code}"]
            raise OSError(f"ffmpeg could not write {path.name}: {lines[-1]}")


def to_rgb8(frame: np.ndarray) -> np.ndarray:
    """H×W(×C) uint8/uint16/float frame -> H×W×3 uint8 (floats clipped to 0-1, alpha dropped)."""
    if frame.ndim == 2:
        frame = frame[:, :, None]
    frame = frame[:, :, :3] if frame.shape[2] >= 3 else np.repeat(frame[:, :, :1], 3, axis=2)
    if frame.dtype == np.uint8:
        return frame
    if frame.dtype == np.uint16:
        return ((frame.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return (np.nan_to_num(np.clip(frame.astype(np.float32), 0.0, 1.0)) * 255.0 + 0.5).astype(np.uint8)
