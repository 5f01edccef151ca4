"""Single still images: `read_image(path) -> RGB(A) array` and `write_image(path, array)`.

PNG/JPEG go through OpenCV, TIFF through tifffile (OpenCV as fallback for codecs tifffile
lacks without imagecodecs), EXR through `engine.io.exr`. Arrays are RGB(A) ordered.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import tifffile

from engine.errors import UserError
from engine.io.exr import read_exr, write_exr

IMAGE_EXTS = (".png", ".tif", ".tiff", ".exr", ".jpg", ".jpeg")


def read_image(path: Path) -> np.ndarray:
    """Decode one image file to an H×W or H×W×C array in RGB(A) order and its stored dtype."""
    ext = path.suffix.lower()
    if ext == ".exr":
        return read_exr(path)
    if ext in (".tif", ".tiff"):
        try:
            with tifffile.TiffFile(path) as tif:
                page = tif.pages[0]
                image = page.asarray()
                return np.moveaxis(image, 0, -1) if page.axes.startswith("S") else image
        except Exception:
            pass  # e.g. LZW/JPEG without imagecodecs: let libtiff in OpenCV try
    return _read_cv2(path)


def _read_cv2(path: Path) -> np.ndarray:
    try:
        data = np.fromfile(path, dtype=np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except (OSError, cv2.error):
        image = None
    if image is None:
        raise UserError(f"{path} could not be read as an image; the file may be corrupt.")
    if image.ndim == 3 and image.shape[2] >= 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return image


def write_image(path: Path, image: np.ndarray) -> None:
    """Encode an H×W or H×W×{3,4} RGB(A) array; the caller has already picked a dtype the format holds."""
    ext = path.suffix.lower()
    channels = 1 if image.ndim == 2 else image.shape[2]
    if ext == ".exr":
        write_exr(path, image)
    elif ext in (".tif", ".tiff"):
        tifffile.imwrite(
            path,
            image,
            photometric="rgb" if channels >= 3 else "minisblack",
            extrasamples=["unassalpha"] if channels == 4 else None,
            compression="zlib",
        )
    elif ext == ".png":
        if channels >= 3:
            image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA if channels == 4 else cv2.COLOR_RGB2BGR)
        ok, encoded = cv2.imencode(".png", image)
        if not ok:
            raise OSError(f"OpenCV could not encode {path.name} as PNG")
        path.write_bytes(encoded.tobytes())
    else:
        raise ValueError(f"write_image does not handle {ext}")
