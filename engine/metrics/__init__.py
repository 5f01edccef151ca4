"""Metrics: identity embeddings and distances, retrieval (R@1, MRR), temporal warp error,
the per-job QC record and its report.

`qc(original_frames, edited_frames, plan, embedder=None, settings=None) -> dict` (see
`engine.metrics.quality`), `render_report(original, edited, qc, path)` (PNG or HTML, see
`engine.metrics.report`), `load_embedder(name)`, `evaluate`/`format_tables` (the paper's
protocol over folders, `engine.metrics.evaluate`).
"""

from engine.metrics.embed import load_embedder
from engine.metrics.quality import qc
from engine.metrics.report import render_report

__all__ = ["load_embedder", "qc", "render_report"]
