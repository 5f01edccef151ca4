"""Accounting of one edit: UNet frame-evaluations and time by stage, progress and cancel.

In: the caller's progress callback `(stage, step, fraction)` — stage `invert`, `edit` or
`decode`, step the denoising step, fraction of the whole edit — and cancel check `() -> bool`.
Out: `Meter.stats()` for `EditResult.stats`. `Meter.unet(...)` is the single place a UNet
is called, so evaluations and UNet time are counted exactly; cancel is checked after every
UNet call and, inside `Meter.cancellable(*unets)` (installed once per edit beside the
FeatureHooks), before every attention layer (`CancelHooks`), so it takes effect within one
layer. On CUDA, model calls are timed with CUDA events, read when a stage ends (the only
host syncs), so the CPU queues the next call's kernels while the GPU runs this one.
"""

from __future__ import annotations

import resource
import time
from collections import defaultdict
from contextlib import ExitStack, contextmanager
from typing import Callable

import torch

from engine.cancel_hooks import CancelHooks
from engine.errors import Cancelled

Progress = Callable[[str, int, float], None]
CancelCheck = Callable[[], bool]


class Meter:
    def __init__(self, device: torch.device, planned_evals: int,
                 progress: Progress | None = None, cancel: CancelCheck | None = None):
        self.device = device
        self.planned = max(planned_evals, 1)
        self.progress_cb, self.cancel_cb = progress, cancel
        self.evals: dict[str, int] = defaultdict(int)
        self.seconds: dict[str, float] = defaultdict(float)
        self.inner: dict[str, float] = defaultdict(float)  # time inside UNet / VAE calls
        self._pending: list[tuple[str, torch.cuda.Event, torch.cuda.Event]] = []  # CUDA: not yet read
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _read_events(self) -> None:
        for what, start, end in self._pending:
            end.synchronize()
            self.inner[what] += start.elapsed_time(end) / 1000
        self._pending.clear()

    @contextmanager
    def stage(self, name: str):
        """Wall time of a pipeline stage (`encode`, `invert`, `edit`, `decode`); the device is
        synchronised at its start and end only."""
        self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.seconds[name] += time.perf_counter() - start
            self._read_events()

    @contextmanager
    def timed(self, what: str):
        """Time spent inside a model call (`unet` or `vae`): CUDA events on CUDA (no host sync),
        else the wall clock."""
        if self.device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            try:
                yield
            finally:
                end.record()
                self._pending.append((what, start, end))
        else:
            begin = time.perf_counter()
            try:
                yield
            finally:
                self.inner[what] += time.perf_counter() - begin

    @contextmanager
    def cancellable(self, *unets):
        """For the block, check cancel before every attention layer of these UNets (nothing to
        install when this edit has no cancel check)."""
        with ExitStack() as hooks:
            if self.cancel_cb is not None:
                for unet in unets:
                    hooks.enter_context(CancelHooks(unet, self.check_cancel))
            yield

    def unet(self, stage: str, unet, latents: torch.Tensor, t: torch.Tensor, emb: torch.Tensor,
             step: int) -> torch.Tensor:
        with self.timed("unet"):
            # Latents and scheduler arithmetic stay fp32; only the UNet runs in its dtype.
            out = unet(latents.to(unet.dtype), t, encoder_hidden_states=emb, return_dict=False)[0].float()
        self.evals[stage] += latents.shape[0]
        self.check_cancel()
        if self.progress_cb is not None:
            label = "invert" if stage == "inversion" else "edit"
            self.progress_cb(label, step, min(sum(self.evals.values()) / self.planned, 1.0))
        return out

    def check_cancel(self) -> None:
        if self.cancel_cb is not None and self.cancel_cb():
            raise Cancelled("the edit was cancelled.")

    def report(self, stage: str, step: int, fraction: float) -> None:
        if self.progress_cb is not None:
            self.progress_cb(stage, step, fraction)

    def stats(self, n_frames: int) -> dict:
        self._sync()
        self._read_events()
        total_evals = sum(self.evals.values())
        total_s = sum(self.seconds.values())
        peak_device = torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda" else None
        return {
            "unet_evals": {**self.evals, "total": total_evals, "per_frame": total_evals / max(n_frames, 1)},
            "seconds": {**{k: round(v, 4) for k, v in self.seconds.items()}, "total": round(total_s, 4)},
            "seconds_in": {k: round(v, 4) for k, v in self.inner.items()},
            "peak_memory_bytes": {"device": peak_device,
                                  "host_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024},
        }
