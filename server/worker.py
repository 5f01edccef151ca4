"""The one GPU worker thread: runs queued jobs in order through `Editor.edit`.

In: the `JobStore` queue, a loaded editor, the inversion cache, media roots, and `emit(ids,
header, buffers)` (thread-safe hand-off to the I/O loop). Out: results written atomically
under the job folder (inline) or into the requested output folder (path), the job row
finished (done / failed / cancelled / interrupted), PROGRESS and STATE events to watchers.
Progress events come from the engine's step callback, so they double as the worker's heartbeat.
No job failure stops the worker: a full disk ends the job `failed` with code `disk_full`.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from typing import Any, Callable

import cv2
import numpy as np

from engine.errors import Cancelled, UserError
from engine.settings import Settings
from server import cache as cache_mod
from server.jobs import Job, JobStore, is_disk_full, job_info
from server.joblog import JobLog
from server import protocol as P

Emit = Callable[[list[bytes], dict[str, Any], list[Any]], None]


def with_alpha(rgb: np.ndarray, alpha: np.ndarray, out: np.ndarray) -> np.ndarray:
    """RGB (H×W×3) and alpha (H×W) interleaved into `out` (H×W×4, same dtype). OpenCV's RGB→RGBA
    is SIMD, ≈ 6× faster than numpy's strided channel copy; float16 passes as its uint16 bits."""
    bits = (lambda a: a.view(np.uint16)) if out.dtype == np.float16 else (lambda a: a)
    cv2.cvtColor(bits(np.ascontiguousarray(rgb)), cv2.COLOR_RGB2RGBA, dst=bits(out))
    out[:, :, 3] = alpha
    return out


class Worker(threading.Thread):
    def __init__(self, store: JobStore, editor: Any, cache: cache_mod.InversionCache, roots: Any, emit: Emit,
                 model_identity: str, random_weights: bool, joblog: JobLog):
        super().__init__(name="ipfacediff-worker", daemon=True)
        self.store, self.editor, self.cache, self.roots, self.emit = store, editor, cache, roots, emit
        self.joblog = joblog
        self.model_identity, self.random_weights = model_identity, random_weights
        self.stopping = threading.Event()
        self.beat = time.monotonic()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.beat = time.monotonic()
            job = self.store.next(timeout=0.5)
            if job is not None:
                try:
                    self.run_job(job)
                except Exception:  # even reporting the failure failed: log it and take the next job
                    traceback.print_exc(file=sys.stderr)

    def watchers(self, job: Job) -> list[bytes]:
        with self.store.lock:
            return list(job.watchers)

    def state_event(self, job: Job, info: dict[str, Any]) -> None:
        self.emit(self.watchers(job), {"type": P.STATE, "job": info}, [])

    # --- one job -------------------------------------------------------------------------
    def run_job(self, job: Job) -> None:
        self.state_event(job, job_info(self.store, job))
        frames: list = []
        try:
            frames, alpha, first, in_dtype = self.load_inputs(job)
            settings = Settings.from_dict(job.request.get("settings") or {})
            self.roots.resolve_settings(settings)
            if job.kind == "preview":
                index = job.request.get("frame", 0)
                if index >= len(frames):
                    raise UserError(f"preview frame {index} is outside the clip of {len(frames)} frame(s).")
                frames = [frames[index]]
                alpha = [alpha[index]] if alpha is not None else None
                settings = settings.replace(keyframes=None)
            self.joblog.started(job, len(frames))
            result = self.editor.edit(frames, job.request["prompt"], settings,
                                      progress=self.progress_callback(job, len(frames)),
                                      cancel=self.cancel_check(job), inversions=self.cache,
                                      preview=self.preview_callback(job, alpha, in_dtype))
            stats = {**result.stats, "qc": result.qc, "cache": self.cache.info()}
            out = self.write_outputs(job, result.frames, alpha, first, in_dtype)
            job.progress = {**job.progress, "stage": "done", "fraction": 1.0, "frames": len(frames),
                            "frames_done": len(frames), "eta_s": 0.0}
            self.store.finish(job, "done", result=out, stats=stats)
        except Cancelled:
            if self.stopping.is_set():
                self.store.finish(job, "interrupted", code="interrupted",
                                  error="the engine shut down while this job was running; resubmit it with retry.")
            else:
                self.store.finish(job, "cancelled", code="cancelled", error="the job was cancelled while running.")
        except P.ProtocolError as exc:
            self.store.finish(job, "failed", code=exc.code, error=exc.message)
        except UserError as exc:
            self.store.finish(job, "failed", code="user_error", error=str(exc))
        except Exception as exc:
            if is_disk_full(exc):
                self.store.finish(job, "failed", code="disk_full", error=f"the disk is full ({exc}); release "
                                                                           "finished jobs and retry.")
            else:  # a bug: keep serving, report it on the job
                traceback.print_exc(file=sys.stderr)
                self.store.finish(job, "failed", code="internal",
                                  error=f"internal error ({type(exc).__name__}: {exc}).")
        self.joblog.ended(job, len(frames))
        self.state_event(job, job_info(self.store, job))

    def load_inputs(self, job: Job) -> tuple[list[np.ndarray], list[np.ndarray] | None, int, np.dtype]:
        """RGB frames, alpha planes (RGBA input) or None, first frame number, input dtype."""
        req = job.request
        if "frames" in req:
            desc = req["frames"]
            # mapped, not read: the pages written at ingest are still in the page cache
            stack = np.memmap(self.store.folder(job.id) / "input.raw", dtype=np.dtype(P.DTYPES[desc["dtype"]][1]),
                              mode="r", shape=(desc["count"], *desc["shape"]))
            frames = [stack[i, :, :, :3] for i in range(len(stack))]
            alpha = [stack[i, :, :, 3] for i in range(len(stack))] if desc["shape"][2] == 4 else None
            return frames, alpha, 0, stack.dtype
        from engine.io import read_frames

        path = self.roots.resolve_input(req["input"]["path"])  # again: the folder may have changed since SUBMIT
        rng = req["input"].get("range")
        clip = read_frames(path, tuple(rng) if rng else None)
        return clip.frames, None, clip.first, clip.frames[0].dtype

    def write_outputs(self, job: Job, frames: list[np.ndarray], alpha: list[np.ndarray] | None, first: int,
                      in_dtype: np.dtype) -> dict[str, Any]:
        output = job.request.get("output") or {"mode": "inline"}
        if output["mode"] == "inline":
            h, w, c = frames[0].shape
            out = np.empty((len(frames), h, w, c + (alpha is not None)), in_dtype)  # one copy, alpha interleaved
            for i, f in enumerate(frames):
                if alpha is None:
                    out[i] = self._as_dtype(f, in_dtype)
                else:
                    with_alpha(self._as_dtype(f, in_dtype), alpha[i], out[i])
            self.store.write(self.store.folder(job.id) / "result.raw", [memoryview(out).cast("B")])
            return {"mode": "inline", "frames": P.describe(list(out))}
        from engine.io import mark_random_weights, write_frames

        out_dir = self.roots.resolve(output["dir"], for_output=True)
        video = self.roots.resolve(output["video"], for_output=True) if output.get("video") else None
        frames = [self._as_dtype(f, in_dtype) for f in frames]  # keep the input's sample type, as inline does
        paths = write_frames(frames, out_dir, start=output.get("start", first), fmt=output.get("format", "png"),
                             video=video, fps=24.0, overwrite=output.get("overwrite", False))
        mark_random_weights(out_dir, self.random_weights)
        return {"mode": "path", "dir": str(out_dir), "paths": [str(p) for p in paths]}

    @staticmethod
    def _as_dtype(frame: np.ndarray, dtype: np.dtype) -> np.ndarray:
        if frame.dtype == dtype:
            return frame
        if dtype.kind == "f":
            return frame.astype(dtype)
        top = np.iinfo(dtype).max
        return np.clip(np.rint(frame.astype(np.float32) * top), 0, top).astype(dtype)

    def preview_callback(self, job: Job, alpha: list[np.ndarray] | None, in_dtype: np.dtype):
        """Shows the first finished keyframe: a PROGRESS event with one pixel part (the frame in
        the job's input layout and sample type), kept on the job for RESULT(preview) while it runs."""
        def show(index: int, frame: np.ndarray) -> None:
            image = np.ascontiguousarray(self._as_dtype(frame, in_dtype))
            if alpha is not None:
                image = with_alpha(image, alpha[index], np.empty((*image.shape[:2], 4), image.dtype))
            info = {"frame": index, "frames": P.describe([image])}
            job.preview = (info, image)
            self.emit(self.watchers(job), {"type": P.PROGRESS, "job": job.id, "state": "running", **job.progress,
                                           "preview": info}, [image])

        return show

    def cancel_check(self, job: Job) -> Callable[[], bool]:
        return lambda: job.cancel.is_set() or self.stopping.is_set()

    def progress_callback(self, job: Job, n_frames: int) -> Callable[[str, int, float], None]:
        started = time.monotonic()
        steps = Settings.from_dict(job.request.get("settings") or {}).steps
        last_sent = [0.0, ""]

        def update(stage: str, step: int, fraction: float) -> None:
            now = time.monotonic()
            self.beat = now
            elapsed = now - started
            eta = elapsed * (1 - fraction) / fraction if fraction > 0 else None
            job.progress = {"stage": stage, "step": step, "steps": steps, "fraction": round(fraction, 4),
                            "frames": n_frames, "frames_done": n_frames if stage == "done" else 0,
                            "elapsed_s": round(elapsed, 3), "eta_s": round(eta, 3) if eta is not None else None}
            self.joblog.progress(job, stage, fraction, eta)
            if now - last_sent[0] < 0.05 and stage == last_sent[1] and fraction < 1.0:
                return  # at most ~20 events a second per job, but every stage change and the end
            last_sent[:] = [now, stage]
            self.emit(self.watchers(job), {"type": P.PROGRESS, "job": job.id, "state": "running", **job.progress}, [])

        return update
