"""`prepare`: frames -> `FacePlan` (what to edit, at model resolution) for `paste` and QC.

In: the clip's frames (any layout/dtype `engine.faces.image` accepts; bad frames get a
status, never an exception), `Settings`, optionally a loaded detector/embedder and a
progress callback. Out: `FacePlan` with
- `crops`: float32 RGB 0..1 arrays, all `size`, to give the model — per chosen subject its
  consecutive frames (`groups` slices `crops` by subject, each a clip of its own), at
  `settings.resolution` or the model's `native` side; or in `full` mode one whole frame per
  usable frame, its long side `settings.resolution` (default: the frame's, at most `native`),
  padded to multiples of 64;
- `crop_frames`, `crop_boxes` (cx, cy, side), `crop_faces`: per crop its frame, smoothed box
  and landmarks;
- `status[i]` per frame: `face` (detected), `tracked` (interpolated through a short miss),
  `no_face`, `too_small`, `invalid` (unusable frame; `notes[i]` says why), or `full`;
- `tracks`: every face track found (id, frames, size, position) so a caller can pick one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from engine.errors import UserError
from engine.faces.crop import extract, extract_full, track_boxes
from engine.faces.detect import Detector, Face, load_detector
from engine.faces.image import inspect
from engine.faces.track import Track, track

DEFAULT_RES = 512  # SD 2.1-base's native side: the crop size when no model is given
FULL_MULTIPLE = 64
ProgressFn = Callable[[str, int, float], None]


@dataclass
class FacePlan:
    mode: str  # "crop" or "full"
    size: tuple[int, int]  # (h, w) of every crop
    n_frames: int
    status: list[str]
    notes: list[str]
    crops: list[np.ndarray] = field(default_factory=list, repr=False)
    crop_frames: list[int] = field(default_factory=list)
    crop_boxes: list[np.ndarray] = field(default_factory=list, repr=False)
    crop_faces: list[Face | None] = field(default_factory=list, repr=False)
    groups: list[tuple[int, int]] = field(default_factory=list)  # [start, stop) in crops, per subject
    subjects: list[int] = field(default_factory=list)  # track id of each group
    tracks: list[dict] = field(default_factory=list)
    detector: str = ""
    size_full_res: int = DEFAULT_RES  # full mode: long side before padding
    full_multiple: int = FULL_MULTIPLE
    seconds: float = 0.0

    def clips(self) -> list[list[np.ndarray]]:
        """The crops of each subject as its own clip (edit each with temporal attention)."""
        return [self.crops[a:b] for a, b in self.groups]

    def summary(self) -> dict:
        """JSON-serialisable description (no pixels)."""
        counts: dict[str, int] = {}
        for s in self.status:
            counts[s] = counts.get(s, 0) + 1
        return {
            "mode": self.mode, "size": list(self.size), "frames": self.n_frames, "detector": self.detector,
            "status_counts": counts, "subjects": list(self.subjects), "tracks": self.tracks,
            "seconds": round(self.seconds, 3),
            "per_frame": [{"frame": i, "status": s, **({"note": n} if n else {})}
                          for i, (s, n) in enumerate(zip(self.status, self.notes))],
            "crop_boxes": [{"frame": int(i), "subject": int(self.subjects[g]), "cx": round(float(b[0]), 2),
                            "cy": round(float(b[1]), 2), "side": round(float(b[2]), 2)}
                           for g, (a, z) in enumerate(self.groups) for i, b in
                           zip(self.crop_frames[a:z], self.crop_boxes[a:z])],
        }


def prepare(frames: Sequence[np.ndarray], settings=None, *, detector: Detector | None = None,
            embedder=None, progress: ProgressFn | None = None, native: int = DEFAULT_RES) -> FacePlan:
    """Detect, track, choose the subject(s), smooth and crop; see the module doc. `native`:
    the model's own side (`Models.native_resolution`), used when `settings.resolution` is None."""
    import time

    from engine.settings import Settings

    start = time.perf_counter()
    settings = settings or Settings()
    res = settings.resolution or native
    n = len(frames)
    if n == 0:
        raise UserError("no frames to prepare.")
    views = [inspect(f) for f in frames]
    status = ["invalid" if not v.ok else "no_face" for v in views]
    notes = [v.note for v in views]
    layouts = [v.layout for v in views]
    plan = FacePlan(mode="crop", size=(res, res), n_frames=n, status=status, notes=notes)

    if settings.face_mode == "full":
        _plan_full(plan, frames, views, settings.resolution, native)
        plan.seconds = time.perf_counter() - start
        return plan

    detector = detector or load_detector(settings.face_detector, settings.face_models)
    plan.detector = detector.name
    small = [0] * n

    def on_frame(i: int, total: int) -> None:
        if progress:
            progress("faces", i, i / max(total, 1))

    tracks = track([v.rgb8 for v in views], detector, min_size=settings.face_min_size,
                   max_missed=settings.face_max_missed, progress=on_frame, small=small)
    tracks.sort(key=lambda t: t.mean_x())
    for new_id, t in enumerate(tracks):
        t.id = new_id
    plan.tracks = [{"id": t.id, "first": t.first, "last": t.last, "detected": len(t.faces),
                    "interpolated": len(t.filled), "size": round(float(np.median([f.size for f in t.faces.values()])), 1),
                    "x": round(t.mean_x(), 1)} for t in tracks]
    for i in range(n):
        if status[i] == "no_face" and small[i]:
            status[i] = "too_small"
            notes[i] = notes[i] or f"face smaller than face_min_size={settings.face_min_size}px"

    if not tracks:  # never a silent whole-frame edit: the clip passes through (`--mode full` edits it whole)
        plan.seconds = time.perf_counter() - start
        return plan

    for t in _choose(tracks, settings, frames, views, embedder):
        frames_t = [i for i in t.frames() if views[i].ok]  # a gap may span an unusable frame
        faces = [t.at(i) for i in frames_t]
        boxes = track_boxes(faces, settings.face_crop_scale, settings.face_smoothing)
        a = len(plan.crops)
        for i, face, box in zip(frames_t, faces, boxes):
            plan.crops.append(extract(np.asarray(frames[i]), box, res, layouts[i]))
            plan.crop_frames.append(i)
            plan.crop_boxes.append(box)
            plan.crop_faces.append(face)
            here = "face" if i in t.faces else "tracked"
            if status[i] != "face":
                status[i] = here
        plan.groups.append((a, len(plan.crops)))
        plan.subjects.append(t.id)
    plan.seconds = time.perf_counter() - start
    return plan


def _plan_full(plan: FacePlan, frames, views, resolution: int | None, native: int) -> None:
    """Whole frames: long side `resolution`, or the frame's own up to `native` (never enlarged)."""
    plan.mode = "full"
    shapes = {np.asarray(frames[i]).shape[:2] for i, v in enumerate(views) if v.ok}
    if len(shapes) > 1:
        raise UserError(f"full mode needs frames of one size; got {sorted(shapes)}.")
    res = resolution or min(native, max(max(s) for s in shapes)) if shapes else native
    plan.size_full_res = res
    for i, v in enumerate(views):
        if not v.ok:
            continue
        crop = extract_full(np.asarray(frames[i]), res, v.layout, FULL_MULTIPLE)
        plan.size = crop.shape[:2]
        plan.crops.append(crop)
        plan.crop_frames.append(i)
        plan.crop_boxes.append(np.array([frames[i].shape[1] / 2, frames[i].shape[0] / 2, max(frames[i].shape[:2])], float))
        plan.crop_faces.append(None)
        plan.status[i] = "full"
    if plan.crops:
        plan.groups.append((0, len(plan.crops)))
        plan.subjects.append(-1)


def _choose(tracks: list[Track], settings, frames, views, embedder) -> list[Track]:
    subject = settings.face_subject
    if settings.face_reference and subject == "largest":
        subject = "reference"
    if subject == "all":
        return list(tracks)
    if subject == "largest":
        return [max(tracks, key=lambda t: t.weight())]
    if subject == "reference":
        return [_closest_to_reference(tracks, settings, frames, views, embedder)]
    k = int(subject)
    if k >= len(tracks):
        raise UserError(f"face_subject={k} but only {len(tracks)} face track(s) were found "
                        f"(numbered from the left, 0..{len(tracks) - 1}).")
    return [tracks[k]]


def _closest_to_reference(tracks, settings, frames, views, embedder):
    import cv2

    from engine.metrics.embed import load_embedder

    image = cv2.imread(str(settings.face_reference), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise UserError(f"cannot read the reference photo '{settings.face_reference}'.")
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return closest_track(tracks, inspect(image).rgb8, [v.rgb8 for v in views],
                         embedder or load_embedder(settings.face_embedder, settings.face_models), settings)


def closest_track(tracks: list[Track], reference_rgb8: np.ndarray | None, views: list[np.ndarray | None],
                  embedder, settings) -> Track:
    """The track whose mean embedding (up to 5 detected frames) is nearest the reference's face."""
    if reference_rgb8 is None:
        raise UserError("the reference photo is not a usable image.")
    detector = load_detector(settings.face_detector, settings.face_models)
    found = detector.detect(reference_rgb8, 20)
    if not found:
        raise UserError("no face found in the reference photo.")
    ref_face = max(found, key=lambda f: f.size)
    ref = embedder.embed(reference_rgb8, ref_face)
    best, best_d = None, np.inf
    for t in tracks:
        picks = sorted(t.faces)
        picks = [picks[j] for j in np.linspace(0, len(picks) - 1, min(5, len(picks))).round().astype(int)]
        vec = np.mean([embedder.embed(views[i], t.faces[i]) for i in picks], axis=0)
        d = embedder.distance(ref, vec)
        if d < best_d:
            best, best_d = t, d
    return best
