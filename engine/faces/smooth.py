"""Temporal smoothing of crop trajectories: no jitter when still, no lag on fast moves.

In: per-frame samples (N×D, e.g. centre x, centre y, log size) in face-size units, or with
gaps (NaN rows). Out: the smoothed N×D trajectory.

`one_euro_zero_phase` runs the one-euro filter (Casiez et al., CHI 2012: a low-pass whose
cutoff rises with speed, so it is smooth when still and responsive when moving) forward
and backward over the clip and averages the two: the lag of one direction cancels the lead
of the other, which an offline clip allows. `savgol` (scipy's Savitzky–Golay) is the
alternative, a zero-lag fixed polynomial fit.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import savgol_filter


def _alpha(cutoff: np.ndarray | float) -> np.ndarray | float:
    tau = 1.0 / (2 * np.pi * cutoff)
    return 1.0 / (1.0 + tau)  # sample period of one frame


def one_euro(x: np.ndarray, min_cutoff: float, beta: float, d_cutoff: float = 0.3) -> np.ndarray:
    """Causal one-euro filter over rows of `x` (N×D); frequencies in cycles per frame. The
    speed that raises the cutoff is the norm over all D columns."""
    out = np.empty_like(x, dtype=np.float64)
    out[0] = x[0]
    dx = np.zeros(x.shape[1])
    a_d = _alpha(d_cutoff)
    for i in range(1, len(x)):
        dx = a_d * (x[i] - out[i - 1]) + (1 - a_d) * dx
        a = _alpha(min_cutoff + beta * float(np.linalg.norm(dx)))
        out[i] = a * x[i] + (1 - a) * out[i - 1]
    return out


def one_euro_zero_phase(x: np.ndarray, min_cutoff: float = 0.03, beta: float = 8.0) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return 0.5 * (one_euro(x, min_cutoff, beta) + one_euro(x[::-1], min_cutoff, beta)[::-1])


def savgol(x: np.ndarray, window: int = 9, order: int = 2) -> np.ndarray:
    x = np.asarray(x, np.float64)
    window = min(window, len(x) - (1 - len(x) % 2))
    if window <= order:
        return x.copy()
    return savgol_filter(x, window, order, axis=0, mode="interp")


def smooth(x: np.ndarray, strength: float) -> np.ndarray:
    """The engine's smoother: zero-phase one-euro whose stillness cutoff is 0.1/strength
    cycles per frame (strength 0 = off; 1 = default)."""
    if strength <= 0 or len(x) < 3:
        return np.asarray(x, np.float64).copy()
    return one_euro_zero_phase(x, min_cutoff=0.03 / strength, beta=8.0 / strength)
