"""Identity metrics of the paper (Sec. 5.3).

In: face embeddings. Out: per-frame cosine distances, clip embeddings (the mean of the
frame embeddings, re-normalised), and retrieval scores of edited clips against a gallery of
original clips: R@1 (share of queries whose own original ranks first) and MRR (mean of
1/rank). Ranking is by cosine similarity of unit vectors, the same order as the paper's
Euclidean distance.
"""

from __future__ import annotations

import numpy as np


def unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


def clip_embedding(frame_embeddings: np.ndarray) -> np.ndarray:
    """Mean of the (unit) frame embeddings, re-normalised."""
    e = unit_rows(np.atleast_2d(frame_embeddings))
    return unit_rows(e.mean(axis=0))


def cosine_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise 1 − cos(a_i, b_i)."""
    return 1.0 - np.sum(unit_rows(a) * unit_rows(b), axis=-1)


def retrieval(queries: np.ndarray, gallery: np.ndarray, truth: list[int]) -> dict:
    """Rank the gallery for each query; `truth[i]` is the gallery row of query i's original.
    Returns R@1, MRR and the 1-based ranks."""
    q, g = unit_rows(np.atleast_2d(queries)), unit_rows(np.atleast_2d(gallery))
    sim = q @ g.T
    ranks = []
    for i, t in enumerate(truth):
        # rank = 1 + number of gallery items strictly more similar than the true one
        ranks.append(int(1 + np.sum(sim[i] > sim[i, t])))
    ranks_a = np.array(ranks, float)
    return {"r1": float(np.mean(ranks_a == 1)), "mrr": float(np.mean(1.0 / ranks_a)), "ranks": ranks}
