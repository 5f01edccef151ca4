"""Frame output: `write_frames` (arrays or a Clip -> out_dir/frame_%06d.{png,tif,exr}, optional
video) and `check_output` (refuse an output plan before any work is done).

In: frames, an output folder, the first frame number, a format, an optional video path and the
`overwrite` wish. Out: the written paths. Promises: only the files of this run are written, each
to a hidden temp file beside its target and then renamed into place; nothing else in the folder
is ever deleted, moved or changed; an existing file of the same name is replaced only with
`overwrite=True`; an input is never written over. `mark_random_weights` labels (or, for a real
model, unlabels) the frames of a random-weight model with RANDOM_WEIGHTS.txt. Folders are created like `mkdir` (0o777 less
the process umask) and files like `touch` (0o666 less the umask).
"""

from __future__ import annotations

import math
import os
import secrets
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import UserError
from engine.io import images, video as video_io
from engine.io.clip import Clip
from engine.io.sequence import DEFAULT_NAME, check_name

_EXTS = {"png": ".png", "tif": ".tif", "tiff": ".tif", "exr": ".exr"}
# Beside frames made by a model with random weights, and in a folder saved from a preset.
RANDOM_WEIGHTS_MARKER = "RANDOM_WEIGHTS.txt"
RANDOM_WEIGHTS_LABEL = "[RANDOM WEIGHTS]"  # on every log line, report, console line and sample grid of such a model

PathLike = str | os.PathLike


def frame_names(count: int, *, start: int = 0, fmt: str = "png", name: str = DEFAULT_NAME) -> list[str]:
    """The file names `write_frames` gives `count` frames numbered from `start`: `name`, a
    printf pattern with one frame-number field, plus the format's extension."""
    ext = _EXTS.get(str(fmt).lower().lstrip("."))
    if ext is None:
        raise UserError(f"The output format {fmt!r} is not supported; use png, tif or exr.")
    if not isinstance(start, (int, np.integer)) or isinstance(start, bool) or start < 0:
        raise UserError(f"The first output frame number must be a whole number of 0 or more, not {start}.")
    name = check_name(name)
    return [f"{name % (start + i)}{ext}" for i in range(count)]


def check_output(out_dir: PathLike, names: Sequence[str], *, video: PathLike | None = None,
                 files: Sequence[PathLike] = (), overwrite: bool = False, inputs: Sequence[PathLike] = (),
                 flag: str = "--overwrite") -> None:
    """Raise UserError (one sentence) unless out_dir/<names>, `video` and the other output `files`
    can all be written: out_dir (and each file's folder) is a folder or can be created, and is
    writable; `video` has an extension `engine.io.video` writes; no target is named twice, is a
    folder, or already exists (unless `overwrite`, which `flag` names in the message); and
    out_dir neither is nor contains an input, and no target is an input file or a file inside
    an input folder (real paths compared, symlinks followed; never allowed, even with
    `overwrite`). Writes nothing: writability is tried with an unnamed temp file."""
    out_dir = Path(out_dir)
    targets = [out_dir / name for name in names] + [Path(f) for f in ([video] if video else []) + list(files)]
    _check_inputs(out_dir, targets, [Path(p) for p in inputs])
    if video is not None:
        video_io.check_video_path(Path(video))
    for folder in dict.fromkeys([out_dir] + [t.parent for t in targets[len(names):]]):
        _check_folder(folder)
    seen: set[Path] = set()
    for target in targets:
        real = target.resolve()
        if real in seen:
            raise UserError(f"{target} is named as two different outputs.")
        seen.add(real)
        if target.is_dir():
            raise UserError(f"{target} is a folder; name a file there instead.")
        if not overwrite and os.path.lexists(target):
            raise UserError(_clash(target, flag))


def _clash(target: Path, flag: str) -> str:
    return f"{target} already exists; pass {flag} to replace it."


def _check_inputs(out_dir: Path, targets: list[Path], inputs: list[Path]) -> None:
    real_out = out_dir.resolve()
    for given in inputs:
        real_in = given.resolve()
        if real_out == real_in or real_out in real_in.parents:
            raise UserError(f"the output folder {out_dir} is or contains the input {given}; "
                            "write the output outside the input.")
        for target in targets:
            real = target.resolve()
            if real == real_in or (real.parent == real_in and os.path.lexists(real)):
                raise UserError(f"{target} is part of the input {given}; an input is never written over.")


def _check_folder(folder: Path) -> None:
    """`folder` is a writable folder, or the nearest existing folder above it is."""
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if existing == folder and not folder.is_dir():
        raise UserError(f"{folder} exists and is not a folder.")
    if not existing.is_dir():
        raise UserError(f"{existing} is a file, so the folder {folder} cannot be created.")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise UserError(f"{existing} is not writable ({error.strerror or error}).") from None


def write_frames(
    frames: Clip | Iterable[np.ndarray],
    out_dir: PathLike,
    *,
    start: int = 0,
    fmt: str = "png",
    video: PathLike | None = None,
    fps: float = 24.0,
    overwrite: bool = False,
    name: str = DEFAULT_NAME,
    preview: Sequence[np.ndarray] | None = None,
) -> list[Path]:
    """Write frames as out_dir/frame_%06d.<ext> (or `name`'s pattern) numbered from `start`;
    return the paths in order.

    Frames are H×W, H×W×3 (RGB) or H×W×4 (RGBA) arrays; a Clip's alpha is written as a fourth
    channel. Dtypes: png uint8/uint16 (floats become 16-bit), tif uint8/uint16/float32, exr
    float16/float32 (integers become 0-1 float32). `video` also writes an 8-bit H.264 file, of
    `preview` when given (display-referred frames, when the files are scene-linear).
    `check_output` runs first, so a clash (without `overwrite`) is refused before anything is
    written. Every file is then written in full to a temp file beside its target, and only then
    are they renamed into place, the video last. A failure before the renames leaves the
    folders as they were (temp files and folders this run created are removed); a failure
    during them (practically only a vanished folder) removes the files this run added, while
    files it already replaced under `overwrite` keep their new content.
    """
    if not isinstance(fps, (int, float, np.number)) or not 0 < fps < math.inf:
        raise UserError(f"The frame rate must be a number above 0, not {fps}.")
    arrays = _collect(frames)
    names = frame_names(len(arrays), start=start, fmt=fmt, name=name)
    encoded = [_for_format(a, Path(names[0]).suffix) for a in arrays]
    out_dir = Path(out_dir).absolute()
    video = None if video is None else Path(video).absolute()
    check_output(out_dir, names, video=video, overwrite=overwrite)
    made: list[Path] = []
    staged: dict[Path, Path] = {}
    done = False
    try:
        made += _make_folders(out_dir)
        for name, image in zip(names, encoded):
            staged[out_dir / name] = _reserve(out_dir / name)
            images.write_image(staged[out_dir / name], image)
        if video is not None:
            made += _make_folders(video.parent)
            staged[video] = _reserve(video)
            video_io.write_video(staged[video], arrays if preview is None else list(preview), fps)
        _rename_all(staged, overwrite)
        done = True
    except OSError as error:
        raise UserError(f"Could not write frames to {out_dir}: {error}.") from error
    finally:
        if not done:
            for tmp in staged.values():
                tmp.unlink(missing_ok=True)
            for folder in reversed(made):
                _remove_if_empty(folder)
    return [out_dir / name for name in names]


def write_atomic(path: Path, chunks: Iterable[Any], fsync: bool = True, mode: int = 0o666) -> int:
    """Write buffers to `path` via a hidden temporary file beside it (`.NAME.tmpPID.TID`, created
    with `mode` less the umask) and rename; returns bytes written. A failed write leaves no
    temporary file behind; one killed mid-write leaves a file matching `.*.tmp*`."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.{threading.get_ident()}")
    n = 0
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as f:
            for chunk in chunks:
                n += f.write(chunk)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n


def mark_random_weights(out_dir: PathLike, random_weights: bool) -> None:
    """Label the frames in `out_dir` as noise from a random-weight model (RANDOM_WEIGHTS_MARKER,
    written atomically), or remove the label an earlier random-weight run left there."""
    marker = Path(out_dir) / RANDOM_WEIGHTS_MARKER
    if not random_weights:
        marker.unlink(missing_ok=True)
        return
    tmp = _reserve(marker)
    tmp.write_text("These frames were made by a model with random weights: noise, not an edit.\n")
    os.replace(tmp, marker)


def _make_folders(folder: Path) -> list[Path]:
    """Create `folder` and missing parents (mode 0o777 less the umask); return those this call made."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    made = []
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:  # made meanwhile by someone else: theirs, not ours to remove
            continue
        made.append(path)
    return made


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty: something else was put there meanwhile
        pass


def _reserve(target: Path) -> Path:
    """A new hidden file beside `target` with its extension, created 0o666 less the umask (the
    writers truncate it and keep that mode)."""
    tmp = target.with_name(f".{target.stem}.tmp-{secrets.token_hex(6)}{target.suffix}")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    return tmp


def _rename_all(staged: dict[Path, Path], overwrite: bool) -> None:
    """Rename every temp file onto its target; on failure remove the targets this run added."""
    if not overwrite:  # a file may have appeared while this run was encoding
        clash = next((t for t in staged if os.path.lexists(t)), None)
        if clash is not None:
            raise UserError(_clash(clash, "--overwrite"))
    added = []
    try:
        for target, tmp in staged.items():
            new = not os.path.lexists(target)
            os.replace(tmp, target)
            if new:
                added.append(target)
    except OSError:
        for target in added:
            target.unlink(missing_ok=True)
        raise


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
