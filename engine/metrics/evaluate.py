"""The paper's evaluation protocol (Sec. 5.3, 5.5) over folders of clips.

In: a folder of original clips, one folder of edited clips per method (clips matched by
name: `a.mp4` ↔ `a/` ↔ `a.mov`), optionally a folder of further original clips that only
enlarge the retrieval gallery, embedder names. Out: a dict with, per method and embedder,
the mean clip-level cosine distance (original vs edited mean embeddings), R@1 and MRR of
each edited clip against the gallery of originals, and the mean warp error (Eq. 7) per
method and for the originals; `format_tables` prints rows shaped like Tables 1 and 3.

Faces are found once per original clip (`prepare`, largest face); the edited clip is
measured at the same landmarks (scaled if the edit has another frame size).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from engine.errors import UserError
from engine.faces.detect import Face
from engine.faces.plan import prepare
from engine.io import MEDIA_EXTS
from engine.metrics.identity import clip_embedding, cosine_distances, retrieval
from engine.metrics.quality import face_region
from engine.metrics.temporal import FlowEstimator, warp_errors

TEMPORAL_SIDE = 512  # the paper scores 512² clips: frames are scaled to this long side


def list_clips(folder) -> dict[str, Path]:
    """name -> path of every clip in a folder: videos, image-sequence subfolders, single images
    (the files `read_frames` reads; others are not clips)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"'{folder}' is not a folder of clips.")
    out = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir() or p.suffix.lower() in MEDIA_EXTS:
            out.setdefault(p.stem if p.is_file() else p.name, p)
    if not out:
        raise UserError(f"no clips (videos, image folders or images) in '{folder}'.")
    return out


def _read(path: Path) -> list[np.ndarray]:
    """The clip's frames as the model sees them (scene-linear EXR converted to sRGB)."""
    from engine.io import read_frames
    from engine.io.colour import ModelFrames

    return ModelFrames.prepare(read_frames(path)).frames


def _faces(frames, settings, every: int) -> list[tuple[int, Face]]:
    plan = prepare(frames, settings.replace(face_mode="crop", face_subject="largest"))
    if not plan.groups:
        return []
    a, b = plan.groups[0]
    return [(plan.crop_frames[k], plan.crop_faces[k]) for k in range(a, b, max(every, 1))]


def _embed(frames, faces, embedder, scale: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    out = []
    for i, face in faces:
        if scale != (1.0, 1.0):
            face = Face(face.box * np.tile(scale, 2), face.kps * np.array(scale), face.score)
        region, f = face_region(frames[i], face)
        if region is not None:
            out.append(embedder.embed(region, f))
    return np.array(out)


def _temporal(frames, est) -> float:
    small = []
    for f in frames:
        k = TEMPORAL_SIDE / max(f.shape[:2])
        small.append(cv2.resize(f, None, fx=k, fy=k, interpolation=cv2.INTER_AREA) if k < 1 else f)
    errs = warp_errors(small, estimator=est)
    return float(np.mean(errs)) if errs else float("nan")


def evaluate(original_dir, edited: dict[str, str | Path], gallery_dir=None, embedders=("facenet",),
             settings=None, every: int = 1, log: Callable[[str], None] | None = None) -> dict:
    from engine.metrics.embed import load_embedder
    from engine.settings import Settings

    settings = settings or Settings()
    log = log or (lambda s: None)
    originals = list_clips(original_dir)
    extra = list_clips(gallery_dir) if gallery_dir else {}
    methods = {m: list_clips(d) for m, d in edited.items()}
    models = {name: load_embedder(name, settings.face_models) for name in embedders}
    est = FlowEstimator(settings.qc_flow)
    gallery: dict[str, list[np.ndarray]] = {e: [] for e in models}
    names: list[str] = []
    per: dict[str, dict[str, dict]] = {m: {} for m in methods}
    temporal: dict[str, list[float]] = {"original": [], **{m: [] for m in methods}}
    skipped: list[str] = []
    for name, path in list(originals.items()) + [(f"gallery:{k}", v) for k, v in extra.items()]:
        log(f"clip {name}")
        frames = _read(path)
        faces = _faces(frames, settings, every)
        if not faces:
            skipped.append(f"{name}: no face found")
            continue
        row = len(names)
        names.append(name)
        base = {e: _embed(frames, faces, m) for e, m in models.items()}
        for e in models:
            gallery[e].append(clip_embedding(base[e]))
        if name.startswith("gallery:"):
            continue
        temporal["original"].append(_temporal(frames, est))
        for method, clips in methods.items():
            if name not in clips:
                skipped.append(f"{method}/{name}: no edited clip")
                continue
            edit = _read(clips[name])
            if len(edit) != len(frames):
                skipped.append(f"{method}/{name}: {len(edit)} edited frames for {len(frames)} original")
                continue
            scale = (edit[0].shape[1] / frames[0].shape[1], edit[0].shape[0] / frames[0].shape[0])
            emb = {e: _embed(edit, faces, m, scale) for e, m in models.items()}
            per[method][name] = {"row": row, "emb": {e: clip_embedding(v) for e, v in emb.items()}}
            temporal[method].append(_temporal(edit, est))
    result = {"gallery_size": len(names), "embedders": list(models), "flow": settings.qc_flow,
              "methods": {}, "temporal": {}, "skipped": skipped}
    for method, clips in per.items():
        scores = {}
        for e in models:
            if not clips:
                continue
            g = np.array(gallery[e])
            q = np.array([c["emb"][e] for c in clips.values()])
            truth = [c["row"] for c in clips.values()]
            r = retrieval(q, g, truth)
            cos = cosine_distances(q, g[truth])
            scores[e] = {"cosine": float(np.mean(cos)), "r1": r["r1"], "mrr": r["mrr"], "clips": len(truth)}
        result["methods"][method] = scores
    for k, v in temporal.items():
        result["temporal"][k] = float(np.mean(v)) if v else None
    return result


def format_tables(result: dict) -> str:
    emb = result["embedders"]
    head = "| Method | " + " | ".join(f"{e} Cosine | {e} R@1 | {e} MRR" for e in emb) + " |"
    lines = [f"Table 1 — identity preservation (cosine distance lower is better; R@1, MRR higher; "
             f"gallery of {result['gallery_size']} original clips)", head,
             "|---|" + "---|" * (3 * len(emb))]
    for method, scores in result["methods"].items():
        cells = []
        for e in emb:
            s = scores.get(e)
            cells += ["–"] * 3 if s is None else [f"{s['cosine']:.3f}", f"{s['r1']:.2f}", f"{s['mrr']:.3f}"]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", f"Table 3 — temporal consistency (warp error of Eq. 7, {result['flow']} flow, "
              f"frames at ≤{TEMPORAL_SIDE} px, 0..1 units; lower is better)",
              "| Method | Temporal Consistency |", "|---|---|"]
    for method, v in result["temporal"].items():
        lines.append(f"| {method} | {'–' if v is None else f'{v:.4f}'} |")
    if result["skipped"]:
        lines += ["", "skipped: " + "; ".join(result["skipped"])]
    return "\n".join(lines)
