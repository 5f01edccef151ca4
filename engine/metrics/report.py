"""The QC report an editor looks at: a before/after contact sheet of keyframes with the
identity distance (and warp error) over time.

In: original and edited frames, the `qc` dict, an output path (.png or .html). Out: the file
(atomically written), titled with the random-weights label when the edit came from such a
model. PNG: one figure (matplotlib, Agg backend): keyframe face crops of the
original above the edit, each labelled with its frame number (the source's, from the record's
`first_frame`) and identity distance (red when drifted), plus the first frame of each run that
passed through unchanged (no usable face), marked so; then identity distance per frame against
the threshold with drifted frames shaded red and passed-through frames grey, then the warp
error of original and edit. HTML: the same picture inline, with the summary and a per-frame
table.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from engine.errors import UserError
from engine.faces.crop import extract
from engine.faces.image import to_float_rgb
from engine.io.write import RANDOM_WEIGHTS_LABEL

TILE = 200
KEYFRAMES = 8


def passed(qc: dict) -> set[int]:
    """Positions of the frames that passed through unchanged."""
    first = qc.get("first_frame", 0)
    return {number - first for number in qc.get("passed_through", [])}


def keyframes(qc: dict, n: int, count: int = KEYFRAMES) -> list[int]:
    """Positions of evenly spread frames that have a crop (all frames in full mode or with no
    face), with the frame of largest identity distance always among them, and the first frame
    of each run of passed-through frames."""
    first = qc.get("first_frame", 0)
    boxes = {b["frame"] - first for b in qc.get("crop_boxes", [])}
    pool = sorted(boxes) if boxes and qc.get("mode") == "crop" else list(range(n))
    skipped = passed(qc)
    runs = sorted(i for i in skipped if i - 1 not in skipped)
    if not pool:
        return runs[:count]
    pick = [pool[j] for j in np.unique(np.linspace(0, len(pool) - 1, min(count, len(pool))).round().astype(int))]
    dist = qc.get("identity_distance") or []
    measured = [(d, i) for i, d in enumerate(dist) if d is not None]
    if measured:
        worst = max(measured)[1]
        if worst not in pick:
            nearest = min(range(len(pick)), key=lambda j: abs(pick[j] - worst))
            pick[nearest] = worst
    return sorted(set(pick) | set(runs[:count]))


def _box_for(qc: dict, i: int, track: int | None = None) -> dict | None:
    """The crop box of the frame at position i for subject `track` (default: the subject its
    identity distance belongs to)."""
    boxes = [b for b in qc.get("crop_boxes", []) if b["frame"] == i + qc.get("first_frame", 0)]
    if track is None:
        track = (qc.get("identity_track") or [None] * (i + 1))[i]
    chosen = [b for b in boxes if b.get("subject") == track]
    return (chosen or boxes or [None])[0]


def _tile(frame: np.ndarray, qc: dict, i: int, track: int | None = None) -> np.ndarray | None:
    frame = np.asarray(frame)
    if qc.get("mode") == "crop" and qc.get("crop_boxes") and i not in passed(qc):
        b = _box_for(qc, i, track)
        if b is None or (track is not None and b.get("subject") != track):
            return None
        return extract(frame, np.array([b["cx"], b["cy"], b["side"]]), TILE)
    rgb = np.clip(to_float_rgb(frame), 0, 1)
    h, w = rgb.shape[:2]
    k = TILE / max(h, w)
    small = cv2.resize(rgb, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
    tile = np.ones((TILE, TILE, 3), np.float32)
    y, x = (TILE - small.shape[0]) // 2, (TILE - small.shape[1]) // 2
    tile[y:y + small.shape[0], x:x + small.shape[1]] = small
    return tile


def check_report_path(path) -> None:
    """Refuse a report path `render_report` cannot write (callers check before the work)."""
    if Path(path).suffix.lower() not in (".png", ".html", ".htm"):
        raise UserError(f"the report must be a .png or .html file; got '{Path(path).name}'.")


def render_report(original: Sequence[np.ndarray], edited: Sequence[np.ndarray], qc: dict, path,
                  random_weights: bool = False) -> Path:
    """Write the report to `path` (.png or .html); returns the path. `random_weights`: the edit
    came from a model with random weights, and the title says so."""
    path = Path(path)
    check_report_path(path)
    title = f"ipfacediff QC {RANDOM_WEIGHTS_LABEL} (noise, not an edit)" if random_weights else "ipfacediff QC"
    png = _figure_png(original, edited, qc, title)
    if path.suffix.lower() == ".png":
        data = png
    else:
        data = _html(png, qc, title).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def summary(qc: dict) -> str:
    parts = []
    if qc.get("embedder"):
        parts.append(f"identity ({qc['embedder']}, drift above {qc['threshold']}): mean {_f(qc['identity_mean'])}, "
                     f"max {_f(qc['identity_max'])}, {len(qc['drifted_frames'])} drifted frame(s)")
    else:
        parts.append("identity: not measured (no face)")
    w = qc.get("warp_error") or {}
    parts.append(f"warp error (Eq. 7, {w.get('flow')}): original {_f(w.get('mean_original'))} → edit {_f(w.get('mean_edited'))}")
    first, status = qc.get("first_frame", 0), qc.get("status") or []
    why: dict[str, list[int]] = {}
    for number in qc.get("passed_through", []):
        why.setdefault(status[number - first].replace("_", " "), []).append(number)
    if why:
        parts.append(f"{sum(map(len, why.values()))} frame(s) passed through unchanged: "
                     + "; ".join(f"{spans(numbers)} ({reason})" for reason, numbers in why.items()))
    return " · ".join(parts)


def spans(numbers: list[int]) -> str:
    """Sorted frame numbers as runs: [1001, 1002, 1003, 1007] -> '1001-1003, 1007'."""
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _f(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def _figure_png(original, edited, qc: dict, title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    n = len(original)
    picks = keyframes(qc, n)
    cols = max(len(picks), 1)
    subjects = qc.get("subjects") or []
    # one before/after row pair per edited face (one pair in full mode or with a single face)
    pairs = [(s["track"], s["identity_distance"]) for s in subjects] if len(subjects) > 1 else \
        [(None, qc.get("identity_distance") or [None] * n)]
    rows = 2 * len(pairs)
    fig = Figure(figsize=(max(2.0 * cols, 10), 2.0 * rows + 5.2), dpi=100)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(rows + 2, cols, height_ratios=[1] * rows + [1.3, 1.0], hspace=0.35, wspace=0.04,
                            left=0.06, right=0.98, top=1 - 0.8 / (2.0 * rows + 5.2), bottom=0.5 / (2.0 * rows + 5.2))
    fig.suptitle(f"{title} — {summary(qc)}", fontsize=9, wrap=True, color="red" if RANDOM_WEIGHTS_LABEL in title
                 else "black")
    threshold = qc.get("threshold")
    first = qc.get("first_frame", 0)
    drifted = {number - first for number in qc.get("drifted_frames") or []}
    skipped = passed(qc)
    for p, (track, dist) in enumerate(pairs):
        for c, i in enumerate(picks):
            for r, frames in enumerate((original, edited)):
                ax = fig.add_subplot(grid[2 * p + r, c])
                ax.set_xticks([])
                ax.set_yticks([])
                tile = _tile(frames[i], qc, i, track)
                if tile is None:
                    ax.set_facecolor("0.9")
                    ax.text(0.5, 0.5, "not in frame", ha="center", va="center", fontsize=7, transform=ax.transAxes)
                else:
                    ax.imshow(np.clip(tile, 0, 1))
                if r == 0:
                    ax.set_title(f"frame {i + first}" + (" · passed through" if i in skipped else "")
                                 + ("" if track is None else f" · face {track}"), fontsize=8,
                                 color="0.45" if i in skipped else "black")
                else:
                    d = dist[i] if i < len(dist) else None
                    bad = d is not None and threshold is not None and d > threshold and i in drifted
                    ax.set_xlabel("d = " + _f(d) + (" DRIFT" if bad else ""), fontsize=8, color="red" if bad else "black")
                    if bad:
                        for s in ax.spines.values():
                            s.set_color("red")
                            s.set_linewidth(2)
                if c == 0:
                    ax.set_ylabel(("original" if r == 0 else "edited") + ("" if track is None else f"\nface {track}"),
                                  fontsize=9)
    dist = qc.get("identity_distance") or [None] * n
    frames_x = np.arange(n) + first
    ax = fig.add_subplot(grid[rows, :])
    y = np.array([np.nan if d is None else d for d in dist], float)
    for track, series in pairs:
        ys = np.array([np.nan if d is None else d for d in series], float)
        ax.plot(frames_x, ys, "o-", ms=3, lw=1.2,
                label="identity distance (original vs edit)" + ("" if track is None else f", face {track}"))
    if qc.get("threshold") is not None:
        ax.axhline(qc["threshold"], ls="--", color="red", lw=1, label=f"drift threshold {qc['threshold']}")
    for i in drifted:
        ax.axvspan(first + i - 0.5, first + i + 0.5, color="red", alpha=0.15, lw=0)
    for k, i in enumerate(sorted(skipped)):
        ax.axvspan(first + i - 0.5, first + i + 0.5, color="0.5", alpha=0.3, lw=0,
                   label=None if k else "passed through unchanged (no usable face)")
    for i in picks:
        ax.axvline(first + i, color="0.8", lw=0.6, zorder=0)
    ax.set_xlim(first - 0.5, first + max(n - 0.5, 0.5))
    top = np.nanmax(y) if np.isfinite(y).any() else 0.0
    ax.set_ylim(0, max(top, qc.get("threshold") or 0) * 1.15 + 1e-3)
    ax.set_ylabel("cosine distance", fontsize=8)
    ax.set_title("identity distance per frame" + ("" if np.isfinite(y).any() else " — not measured"), fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    ax.tick_params(labelsize=7)
    ax2 = fig.add_subplot(grid[rows + 1, :], sharex=ax)
    w = qc.get("warp_error") or {}
    for key, color in (("original", "0.5"), ("edited", "tab:orange")):
        vals = np.array([np.nan if v is None else v for v in (w.get(key) or [None] * n)], float)
        ax2.plot(frames_x, vals, "o-", ms=2.5, lw=1, color=color, label=f"{key} (mean {_f(w.get('mean_' + key))})")
    ax2.set_ylabel("warp error", fontsize=8)
    ax2.set_xlabel("frame", fontsize=8)
    ax2.set_title("temporal warp error per frame (Eq. 7)", fontsize=9)
    ax2.legend(fontsize=7, loc="upper left")
    ax2.tick_params(labelsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _html(png: bytes, qc: dict, title: str) -> str:
    rows = []
    dist = qc.get("identity_distance") or []
    w = qc.get("warp_error") or {}
    first = qc.get("first_frame", 0)
    skipped = passed(qc)
    for i, status in enumerate(qc.get("status") or []):
        d = dist[i] if i < len(dist) else None
        bad = i + first in set(qc.get("drifted_frames") or [])
        note = "; ".join(filter(None, [(qc.get("notes") or [""] * (i + 1))[i],
                                       "passed through unchanged" if i in skipped else ""]))
        cells = [str(i + first), html.escape(status), _f(d), _f((w.get("original") or [None] * (i + 1))[i]),
                 _f((w.get("edited") or [None] * (i + 1))[i]), html.escape(note)]
        style = ' style="color:#c00;font-weight:bold"' if bad else ' style="color:#777"' if i in skipped else ""
        rows.append(f"<tr{style}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    b64 = base64.b64encode(png).decode()
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}img{{max-width:100%}}</style></head><body>
<h1>{html.escape(title)}</h1><p>{html.escape(summary(qc))}</p>
<img alt="contact sheet and identity distance over time" src="data:image/png;base64,{b64}">
<h2>Per frame</h2><table><tr><th>frame</th><th>status</th><th>identity distance</th>
<th>warp error (original)</th><th>warp error (edit)</th><th>note</th></tr>
{''.join(rows)}</table></body></html>
"""
