"""OpenEXR stills via the official `OpenEXR` bindings: path <-> H×W×C float16/float32 array.

OpenCV 5 wheels are built without OpenEXR, so EXR never goes through cv2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenEXR

from engine.errors import UserError

_NAMES = {1: "Y", 2: "YA", 3: "RGB", 4: "RGBA"}


def read_exr(path: Path) -> np.ndarray:
    """Read the first part of an EXR as H×W×C (RGB(A) or Y(A)), in its stored float type."""
    try:
        with OpenEXR.File(str(path), separate_channels=True) as exr:
            planes = {name: channel.pixels for name, channel in exr.channels().items()}
    except Exception:
        raise UserError(f"{path} could not be read as an OpenEXR image; the file may be corrupt.") from None
    for names in ("RGBA", "RGB", "YA", "Y"):
        if all(n in planes for n in names):
            break
    else:
        if len(planes) != 1:
            raise UserError(f"{path} has no R, G, B or Y channels (it has {', '.join(sorted(planes))}).")
        names = list(planes)
    try:
        return np.stack([planes[n] for n in names], axis=-1)
    except ValueError:
        raise UserError(f"{path} has channels of different sizes (subsampled EXR), which is not supported.") from None


def write_exr(path: Path, image: np.ndarray) -> None:
    """Write an H×W or H×W×{1,2,3,4} float16/float32 array as a ZIP-compressed scanline EXR."""
    if image.ndim == 2:
        image = image[:, :, None]
    planes = {name: np.ascontiguousarray(image[:, :, i]) for i, name in enumerate(_NAMES[image.shape[2]])}
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    try:
        with OpenEXR.File(header, planes) as exr:
            exr.write(str(path))
    except Exception as error:
        raise OSError(f"could not write {path}: {error}") from error
