"""Metrics: identity embeddings and distances, retrieval (R@1, MRR), temporal warp error,
the per-job QC record and its report. See the submodules."""
