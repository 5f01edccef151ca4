"""Temporal consistency: the warp error of the paper's Eq. 7 (Sec. 5.5).

In: consecutive frames (RGB, uint8 or float 0..1). Out: per pair t the mean absolute
difference, in 0..1 units over pixels and channels, between frame t warped to t+1 by the
optical flow and frame t+1; the clip's value is their mean. The flow (t+1 -> t, so frame t
is sampled with bilinear inverse warping, as the paper says) is OpenCV's DIS (default) or
Farneback on this machine, or RAFT (torchvision's raft_small) where torchvision and its
weights are present. The paper computes the flow on the video being scored; `flow_from`
lets the original's flow score the edit instead (robust to a flickering edit fooling
the flow).
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from engine.errors import UserError


def _gray8(frame: np.ndarray) -> np.ndarray:
    f = _float(frame)
    return (np.clip(f @ np.array([0.299, 0.587, 0.114], np.float32), 0, 1) * 255 + 0.5).astype(np.uint8)


def _float(frame: np.ndarray) -> np.ndarray:
    if frame.dtype == np.uint8:
        return frame.astype(np.float32) / 255.0
    if frame.dtype == np.uint16:
        return frame.astype(np.float32) / 65535.0
    return np.asarray(frame, np.float32)


class FlowEstimator:
    """`est(a, b)` -> H×W×2 flow such that a(x + flow(x)) ≈ b(x): the backward map that
    warps frame `a` onto frame `b`."""

    def __init__(self, method: str = "dis"):
        self.method = method
        if method == "dis":
            self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        elif method == "raft":
            self._raft = _load_raft()
        elif method != "farneback":
            raise UserError(f"unknown flow method '{method}'; choose dis, farneback or raft.")

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow from b to a (for each pixel of b, where it is in a)."""
        if self.method == "raft":
            return self._raft(a, b)
        ga, gb = _gray8(a), _gray8(b)
        if self.method == "dis":
            return self._dis.calc(gb, ga, None)
        return cv2.calcOpticalFlowFarneback(gb, ga, None, 0.5, 4, 15, 3, 5, 1.2, 0)


def _load_raft():
    try:
        import torch
        from torchvision.models.optical_flow import Raft_Small_Weights, raft_small
    except ImportError as exc:
        raise UserError("RAFT needs torchvision; use qc_flow=dis or farneback.") from exc
    try:
        model = raft_small(weights=Raft_Small_Weights.DEFAULT).eval()
    except Exception as exc:  # noqa: BLE001 - no weights offline
        raise UserError(f"RAFT weights are not available offline ({type(exc).__name__}); use qc_flow=dis.") from exc

    def flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        h, w = a.shape[:2]
        ph, pw = -(-h // 8) * 8, -(-w // 8) * 8

        def prep(x):
            x = cv2.copyMakeBorder(_float(x), 0, ph - h, 0, pw - w, cv2.BORDER_REPLICATE)
            return torch.from_numpy(x).permute(2, 0, 1)[None] * 2 - 1

        with torch.no_grad():
            out = model(prep(b), prep(a))[-1][0].permute(1, 2, 0).numpy()
        return out[:h, :w]

    return flow


def warp(frame: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample `frame` at x + flow(x) (bilinear inverse warping)."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(_float(frame), gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def warp_errors(frames: Sequence[np.ndarray], flow_from: Sequence[np.ndarray] | None = None,
                method: str = "dis", estimator: FlowEstimator | None = None) -> list[float]:
    """Eq. 7 term for each consecutive pair: mean |W(I_t, o_t) − I_{t+1}| (0..1 units)."""
    est = estimator or FlowEstimator(method)
    src = flow_from if flow_from is not None else frames
    out = []
    for t in range(len(frames) - 1):
        flow = est(src[t], src[t + 1])
        out.append(float(np.mean(np.abs(warp(frames[t], flow) - _float(frames[t + 1])))))
    return out


def warp_error(frames: Sequence[np.ndarray], **kw) -> float:
    """The clip's temporal loss L_temp (Eq. 7): the mean of `warp_errors`."""
    errs = warp_errors(frames, **kw)
    return float(np.mean(errs)) if errs else float("nan")
