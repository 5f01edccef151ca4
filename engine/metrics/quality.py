"""Quality control of one edit: is it still the same person, and did it add flicker?

In: the original and edited frames (same count and size), the `FacePlan` the edit used
(its faces give where to look; landmarks from the original are used for both, so the
edited face is measured exactly where the original was), an embedder (loaded from
`settings.face_embedder` when None). Out: a JSON-serialisable dict:
- `identity_distance[i]`: cosine distance between original and edited face embeddings in
  frame i (the largest over subjects, whose track id is `identity_track[i]`; None where no
  face was measured), `threshold`,
  `drifted_frames` (distance > threshold), per-subject detail incl. the clip-level distance
  of the mean embeddings (the paper's Sec. 5.3 cosine);
- `warp_error`: Eq. 7 per frame pair on the face crops (or the whole frame in full mode)
  for the original and for the edit, with their means — an edit that flickers more than its
  source shows up as `edited` > `original`;
- `crop_boxes`, `status` (per frame), `mode`, `embedder`, `seconds`;
- `passed_through`: frames left unchanged because they had no usable face (status
  `no_face`, `too_small` or `invalid`).
Per-frame lists are indexed by position in the clip; frames are named by number (in
`drifted_frames`, `passed_through` and the crop boxes' `frame`), counted from `first_frame`
— the source's file frame number of the first frame (`numbered` renumbers a record).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Sequence

import cv2
import numpy as np

from engine.errors import UserError
from engine.faces.crop import extract, extract_full
from engine.faces.detect import Face
from engine.faces.image import inspect
from engine.metrics.identity import clip_embedding, cosine_distances
from engine.metrics.temporal import FlowEstimator, warp_errors

if TYPE_CHECKING:
    from engine.faces.plan import FacePlan

QC_CROP = 256  # side of the face crops the warp error is measured on
PASSED = ("no_face", "too_small", "invalid")  # statuses of frames an edit passes through unchanged


def face_region(frame: np.ndarray, face: Face, grow: float = 1.0) -> tuple[np.ndarray | None, Face]:
    """8-bit RGB view of the region around a face (box grown by `grow` sizes each side) and
    the face in that region's coordinates: embedders never convert a whole 4K frame."""
    h, w = frame.shape[:2]
    pad = face.size * grow
    x0, y0 = int(max(face.box[0] - pad, 0)), int(max(face.box[1] - pad, 0))
    x1, y1 = int(min(face.box[2] + pad, w)), int(min(face.box[3] + pad, h))
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None, face
    view = inspect(np.asarray(frame)[y0:y1, x0:x1])
    return view.rgb8, face.moved(1.0, -x0, -y0)


def qc(original_frames: Sequence[np.ndarray], edited_frames: Sequence[np.ndarray], plan: "FacePlan",
       embedder=None, settings=None, first: int = 0) -> dict:
    """See the module doc; `first` is the frame number of the first frame."""
    from engine.metrics.embed import load_embedder
    from engine.settings import Settings

    start = time.perf_counter()
    settings = settings or Settings()
    n = len(original_frames)
    if len(edited_frames) != n:
        raise UserError(f"QC needs as many edited frames as original ones ({len(edited_frames)} vs {n}).")
    every = settings.qc_every
    distance: list[float | None] = [None] * n
    which: list[int | None] = [None] * n  # the subject (track id) each frame's distance belongs to
    subjects = []
    threshold = settings.qc_identity_threshold
    name = None
    if every and plan.mode == "crop" and plan.crops:
        embedder = embedder or load_embedder(settings.face_embedder, settings.face_models)
        name = embedder.name
        threshold = threshold if threshold is not None else embedder.threshold
        for g, (a, b) in enumerate(plan.groups):
            per, eo, ee = {}, [], []
            for k in range(a, b, every):
                i, face = plan.crop_frames[k], plan.crop_faces[k]
                ro, fo = face_region(original_frames[i], face)
                re, fe = face_region(edited_frames[i], face)
                if ro is None or re is None:
                    continue
                vo, ve = embedder.embed(ro, fo), embedder.embed(re, fe)
                eo.append(vo)
                ee.append(ve)
                d = float(embedder.distance(vo, ve))
                per[i] = d
                if distance[i] is None or d > distance[i]:
                    distance[i], which[i] = d, int(plan.subjects[g])
            clip_d = float(cosine_distances(clip_embedding(np.array(eo)), clip_embedding(np.array(ee)))) if eo else None
            vals = list(per.values())
            subjects.append({"track": int(plan.subjects[g]), "frames_measured": len(per),
                             "identity_distance": [_r(per.get(i)) for i in range(n)],
                             "mean": _r(np.mean(vals)) if vals else None, "max": _r(max(vals)) if vals else None,
                             "clip_distance": _r(clip_d)})
    drifted = [i for i, d in enumerate(distance) if d is not None and threshold is not None and d > threshold]
    warp = _warp(original_frames, edited_frames, plan, settings.qc_flow)
    measured = [d for d in distance if d is not None]
    return numbered({
        "first_frame": 0,
        "mode": plan.mode,
        "frames": n,
        "embedder": name,
        "threshold": _r(threshold),
        "identity_distance": [_r(d) for d in distance],
        "identity_track": which,
        "identity_mean": _r(np.mean(measured)) if measured else None,
        "identity_max": _r(max(measured)) if measured else None,
        "drifted_frames": drifted,
        "passed_through": [i for i, status in enumerate(plan.status) if status in PASSED],
        "subjects": subjects,
        "warp_error": warp,
        "status": list(plan.status),
        "notes": list(plan.notes),
        "crop_boxes": plan.summary()["crop_boxes"],
        "seconds": round(time.perf_counter() - start, 3),
    }, first)


def numbered(record: dict | None, first: int) -> dict | None:
    """`record` with its frames numbered from `first` (the source's first file frame number)."""
    if record is None:
        return None
    shift = first - record.get("first_frame", 0)
    return {**record, "first_frame": first,
            "drifted_frames": [i + shift for i in record["drifted_frames"]],
            "passed_through": [i + shift for i in record.get("passed_through", [])],
            "crop_boxes": [{**b, "frame": b["frame"] + shift} for b in record.get("crop_boxes", [])]}


def _r(x, nd: int = 5):
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else round(float(x), nd)


def _warp(original_frames, edited_frames, plan: "FacePlan", method: str) -> dict:
    """Eq. 7 per consecutive pair, on what the model saw: the face crops (per subject), or
    the whole frame scaled to the plan's size in full mode. Value per frame t+1."""
    n = len(original_frames)
    per_o: list[float | None] = [None] * n
    per_e: list[float | None] = [None] * n
    est = FlowEstimator(method)
    for a, b in plan.groups:
        runs, run = [], [a]
        for k in range(a + 1, b):  # consecutive frames only
            if plan.crop_frames[k] == plan.crop_frames[k - 1] + 1:
                run.append(k)
            else:
                runs.append(run)
                run = [k]
        runs.append(run)
        for run in runs:
            if len(run) < 2:
                continue
            co = [_view(original_frames, plan, k) for k in run]
            ce = [_view(edited_frames, plan, k) for k in run]
            eo = warp_errors(co, estimator=est)
            ee = warp_errors(ce, estimator=est)
            for j, k in enumerate(run[1:]):
                i = plan.crop_frames[k]
                per_o[i] = eo[j] if per_o[i] is None else max(per_o[i], eo[j])
                per_e[i] = ee[j] if per_e[i] is None else max(per_e[i], ee[j])
    vo = [v for v in per_o if v is not None]
    ve = [v for v in per_e if v is not None]
    return {"flow": method, "original": [_r(v) for v in per_o], "edited": [_r(v) for v in per_e],
            "mean_original": _r(np.mean(vo)) if vo else None, "mean_edited": _r(np.mean(ve)) if ve else None}


def _view(frames, plan: "FacePlan", k: int) -> np.ndarray:
    i = plan.crop_frames[k]
    frame = np.asarray(frames[i])
    if plan.mode == "full":
        full = extract_full(frame, plan.size_full_res, None, plan.full_multiple)
        scale = QC_CROP * 2 / max(full.shape[:2])
        return cv2.resize(full, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else full
    return extract(frame, plan.crop_boxes[k], QC_CROP)
