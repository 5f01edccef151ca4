"""The demo's pictures: a short real-face clip and the before/after contact sheet.

In: a frame count and side (`make_clip`: the astronaut photo that ships with scikit-image, with
a slow synthetic head move), or the frames before and after an edit (`contact_sheet`: input
above, output below). Out: RGB uint8 arrays; `default_model_on_disk()` says whether Stable
Diffusion 2.1-base can be used offline. `ipfacediff demo` (server/demo.py, which runs the edit
through a real engine process) and the farm's QC sheet use them.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from engine.models import DEFAULT_MODEL

FACE_CENTRE, FACE_SIDE = (225.0, 112.0), 200.0  # the astronaut's face in skimage's 512² photo


def make_clip(n_frames: int, side: int) -> list[np.ndarray]:
    """n frames of the astronaut's face: slow pan, zoom and tilt, as a handheld shot."""
    from skimage import data

    photo = data.astronaut()
    frames = []
    for i in range(n_frames):
        phase = i / max(n_frames - 1, 1)
        cx, cy = FACE_CENTRE[0] + 12 * np.sin(2 * np.pi * phase), FACE_CENTRE[1] + 6 * phase
        scale = side / (FACE_SIDE * (1.0 + 0.08 * phase))
        m = cv2.getRotationMatrix2D((cx, cy), 4 * np.sin(2 * np.pi * phase), scale)
        m[:, 2] += (side / 2 - cx, side / 2 - cy)
        frames.append(cv2.warpAffine(photo, m, (side, side), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT))
    return frames


def default_model_on_disk() -> bool:
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(DEFAULT_MODEL, local_files_only=True)
        return True
    except Exception:  # not in the local cache (any hub error means: not usable offline)
        return False


def contact_sheet(before: list[np.ndarray], after: list[np.ndarray], label: str, columns: int = 8,
                  tile: int = 160, passed: Sequence[int] = ()) -> np.ndarray:
    """Input row above output row, `tile` pixels a frame, with a caption bar; output tiles of
    the frames in `passed` (indices: no face, too small) are tagged "unchanged"."""
    pick = np.linspace(0, len(before) - 1, min(columns, len(before))).round().astype(int)

    def row(frames: list[np.ndarray], tagged: frozenset = frozenset()) -> np.ndarray:
        tiles = [cv2.resize(frames[i], (tile, tile), interpolation=cv2.INTER_AREA) for i in pick]
        for tile_image, i in zip(tiles, pick):
            if i in tagged:
                cv2.rectangle(tile_image, (0, tile - 22), (tile - 1, tile - 1), (90, 90, 90), -1)
                cv2.putText(tile_image, "unchanged", (6, tile - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                            (255, 255, 255), 1, cv2.LINE_AA)
        return np.hstack(tiles)

    grid = np.vstack([row(before), row(after, frozenset(int(i) for i in passed))])
    caption = np.full((28, grid.shape[1], 3), 255, np.uint8)
    cv2.putText(caption, label, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (200, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([caption, grid])
