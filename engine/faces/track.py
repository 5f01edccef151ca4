"""Detection on every frame and tracking across frames.

In: per-frame 8-bit RGB views (None for unusable frames), a `Detector`, the smallest face
size, the longest gap a track survives. Out: `Track`s with stable ids: per frame the
detected `Face`, and for short gaps (occlusion, motion blur, a missed detection) a face
interpolated between the neighbours, marked as such.

How: the whole frame is searched every `detect_interval` frames, whenever a track loses its
face (that same frame and the next), and while none is alive; in every frame each live track (and each new candidate) is searched
again in a small region around its constant-velocity prediction, so landmarks always come
from the same, face-normalised scale (no jitter between full and regional passes) and the
per-frame cost stays small on large frames. Detections are assigned to tracks by IoU with
the Hungarian method (`scipy.optimize.linear_sum_assignment`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from engine.faces.detect import Detector, Face

ROI_FACE_PX = 72.0  # the face's size inside the regional search image
ROI_SIDE = 3.0  # regional search side, in face sizes
MIN_IOU = 0.3


@dataclass
class Track:
    id: int
    faces: dict[int, Face] = field(default_factory=dict)  # frame -> detected face
    filled: dict[int, Face] = field(default_factory=dict)  # frame -> interpolated face (gap)
    missed: int = 0

    @property
    def first(self) -> int:
        return min(self.faces)

    @property
    def last(self) -> int:
        return max(self.faces)

    def at(self, frame: int) -> Face | None:
        return self.faces.get(frame) or self.filled.get(frame)

    def frames(self) -> list[int]:
        return sorted(set(self.faces) | set(self.filled))

    def predict(self, frame: int) -> Face:
        """Constant-velocity guess of the face in `frame` from the last two detections."""
        seen = sorted(self.faces)
        last = self.faces[seen[-1]]
        if len(seen) < 2:
            return last
        prev = self.faces[seen[-2]]
        step = (frame - seen[-1]) / max(seen[-1] - seen[-2], 1)
        shift = (last.centre - prev.centre) * step
        return last.moved(1.0, *shift)

    def weight(self) -> float:
        """Screen presence: the sum of face sizes over the frames it was seen in."""
        return float(sum(f.size for f in self.faces.values()))

    def mean_x(self) -> float:
        return float(np.mean([f.centre[0] for f in self.faces.values()]))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def detect_near(detector: Detector, rgb8: np.ndarray, guess: Face, min_size: float) -> Face | None:
    """Search a region around `guess`, normalised so the face is ~ROI_FACE_PX there; the face
    found that overlaps the guess most (IoU ≥ MIN_IOU), in frame coordinates."""
    size = max(guess.size, min_size)
    side = ROI_SIDE * size
    scale = ROI_FACE_PX / size
    cx, cy = guess.centre
    out = int(round(side * scale))
    x0, y0 = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
    x1, y1 = int(min(cx + side / 2, rgb8.shape[1])), int(min(cy + side / 2, rgb8.shape[0]))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    small = cv2.resize(rgb8[y0:y1, x0:x1], None, fx=scale, fy=scale,
                       interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    ox, oy = int(round(out / 2 - scale * (cx - x0))), int(round(out / 2 - scale * (cy - y0)))
    roi = np.zeros((out, out, 3), np.uint8)
    sx0, sy0, dx0, dy0 = max(0, -ox), max(0, -oy), max(0, ox), max(0, oy)
    hh, ww = min(small.shape[0] - sy0, out - dy0), min(small.shape[1] - sx0, out - dx0)
    if hh <= 8 or ww <= 8:
        return None
    roi[dy0:dy0 + hh, dx0:dx0 + ww] = small[sy0:sy0 + hh, sx0:sx0 + ww]
    # cv2.resize maps pixel centres: roi = scale * (frame - (x0, y0)) + 0.5 * (scale - 1) + (ox, oy)
    bias = 0.5 * (scale - 1.0)
    found = detector.detect(roi, ROI_FACE_PX * 0.45)
    if not found:
        return None
    back = [f.moved(1.0 / scale, x0 - (ox + bias) / scale, y0 - (oy + bias) / scale) for f in found]
    best = max(back, key=lambda f: iou(f.box, guess.box))
    if iou(best.box, guess.box) < MIN_IOU or best.size < min_size:
        return None
    return best


def _nms(faces: list[Face], thresh: float = 0.5) -> list[Face]:
    keep: list[Face] = []
    for f in sorted(faces, key=lambda f: -f.score):
        if all(iou(f.box, k.box) < thresh for k in keep):
            keep.append(f)
    return keep


def track(views: list[np.ndarray | None], detector: Detector, *, min_size: float, max_missed: int = 5,
          detect_interval: int = 8, min_hits: int = 3,
          progress: Callable[[int, int], None] | None = None, small: list[int] | None = None) -> list[Track]:
    """Detect and track faces over a clip; see the module doc. Tracks seen in fewer than
    `min_hits` frames (fewer on short clips) are dropped as false positives. `small`, when
    given, counts per frame the faces a whole-frame pass saw below `min_size`."""
    tracks: list[Track] = []
    alive: list[Track] = []
    full_next = True
    n = len(views)
    for i, rgb8 in enumerate(views):
        if progress:
            progress(i, n)
        if rgb8 is None:
            for t in alive:
                t.missed += 1
            alive = [t for t in alive if t.missed <= max_missed]
            full_next = True
            continue
        guesses = [t.predict(i) for t in alive]

        def full_pass(known: list[Face]) -> list[Face]:
            new = []
            for f in detector.detect(rgb8, min_size):
                if f.size < min_size:
                    if small is not None:
                        small[i] += 1
                elif all(iou(f.box, g.box) < MIN_IOU for g in known):
                    new.append(f)
            return new

        searched = full_next or not alive or i % detect_interval == 0
        if searched:
            guesses += full_pass(guesses)
        found = [f for f in (detect_near(detector, rgb8, g, min_size) for g in guesses) if f is not None]
        if not searched and len(found) < len(alive):  # a track lost its face: look everywhere now
            extra = full_pass(found)
            found += [f for f in (detect_near(detector, rgb8, g, min_size) for g in extra) if f is not None]
        found = _nms(found)
        full_next = False
        matched: set[int] = set()
        if alive and found:
            cost = np.array([[1.0 - iou(t.predict(i).box, f.box) for f in found] for t in alive])
            for r, c in zip(*linear_sum_assignment(cost)):
                if cost[r, c] <= 1.0 - MIN_IOU:
                    alive[r].faces[i] = found[c]
                    alive[r].missed = 0
                    matched.add(c)
        for t in alive:
            if i not in t.faces:
                t.missed += 1
                full_next = True
        for c, f in enumerate(found):
            if c not in matched:
                t = Track(id=len(tracks), faces={i: f})
                tracks.append(t)
                alive.append(t)
        alive = [t for t in alive if t.missed <= max_missed]
    need = min(min_hits, max(1, n // 2))
    kept = [t for t in tracks if len(t.faces) >= need]
    for new_id, t in enumerate(kept):
        t.id = new_id
        _fill_gaps(t)
    return kept


def _fill_gaps(t: Track) -> None:
    """Interpolate faces linearly across the frames a track was not detected in."""
    seen = sorted(t.faces)
    for a, b in zip(seen, seen[1:]):
        fa, fb = t.faces[a], t.faces[b]
        for k in range(a + 1, b):
            w = (k - a) / (b - a)
            dense = None
            if fa.dense is not None and fb.dense is not None and fa.dense.shape == fb.dense.shape:
                dense = fa.dense * (1 - w) + fb.dense * w
            t.filled[k] = Face(fa.box * (1 - w) + fb.box * w, fa.kps * (1 - w) + fb.kps * w,
                               min(fa.score, fb.score), dense)
