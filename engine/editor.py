"""The engine's one entry point: `Editor(...).edit(frames, prompt, settings) -> EditResult`.

In: frames as numpy arrays (H×W×3, uint8 or float32 in 0..1, all the same size), a
prompt, `Settings`, an optional progress callback `(stage, step, fraction)` and cancel
check, a preview callback (the first keyframe, as soon as it is final) and an inversion
cache. Out: `EditResult` with the edited frames (same size and dtype as the input) and
stats (UNet frame-evaluations and time by stage, peak memory, model identity, the
random-weights flag; `no_face` and a warning when no frame has a face: then the frames come
back unchanged and no model runs). Stages: encode → invert (ε1) → edit (ε2) → decode.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np
import torch

from engine.attention import FeatureHooks
from engine.edit import edit as edit_latents
from engine.errors import UserError
from engine import inversion_file
from engine.inversion_file import HOOK_LAYOUT
from engine.invert import Inversion, decode, encode, invert
from engine.keyframes import plan_keyframes
from engine.meter import CancelCheck, Meter, Progress
from engine.models import DEFAULT_MODEL, Models, load_models
from engine.pixels import as_float_frames, check_clip, model_pixels, model_size, to_output
from engine.prompts import check_prompt, prompt_warnings
from engine.schedule import Schedule
from engine.settings import Settings, inversion_fields

NO_FACE = ("no face was found in any frame, so the clip passed through unchanged; "
           "set face_mode to full (--mode full) to edit whole frames.")
Preview = Callable[[int, np.ndarray], None]
"""Called once per edit with (frame index, that frame edited, in the input's size and dtype)."""


class InversionCache(Protocol):
    """Where `edit` looks for a clip's inversion before inverting (server.cache implements it)."""

    def get(self, key: str, restore: Callable[[Path], Inversion]) -> Inversion | None: ...

    def put(self, key: str, inversion: Inversion) -> None: ...


@dataclass
class EditResult:
    frames: list[np.ndarray]
    stats: dict = field(default_factory=dict)
    inversion: Inversion | None = None
    """The inversion used or made; pass it back as `inversion=` to re-edit without inverting."""
    qc: dict | None = None
    """Per-frame identity distance, warp error, crop boxes, drifted frames (engine.metrics.qc)."""


def _share(progress: Progress | None, start: float, share: float) -> Progress | None:
    """One subject's progress as its share of the whole edit, so several faces run 0 → 1 once."""
    if progress is None:
        return None
    return lambda stage, step, fraction: progress(stage, step, start + share * fraction)


def _summed(per_subject: list[dict], subjects: list[int]) -> dict:
    """One edit's stats over its subjects (faces): evaluations, seconds and cache bytes summed,
    peak memory the largest, per-crop figures over all crops; each subject's own under `subjects`."""
    if len(per_subject) == 1:
        return dict(per_subject[0])
    out = dict(per_subject[-1])  # model, device, settings, prompt: the same for every subject
    crops = sum(s["frames"] for s in per_subject)
    for key in ("unet_evals", "seconds", "seconds_in", "cache_bytes"):
        out[key] = {k: sum(s[key].get(k) or 0 for s in per_subject) for k in per_subject[0][key]}
    for key in ("seconds", "seconds_in"):  # to 0.1 ms as each subject's (Meter.stats): 0.1 + 0.2 is 0.3
        out[key] = {k: round(v, 4) for k, v in out[key].items()}
    out["unet_evals"]["per_frame"] = out["unet_evals"]["total"] / crops
    out["seconds"]["load"] = per_subject[0]["seconds"]["load"]  # the models loaded once
    out["peak_memory_bytes"] = {k: max((s["peak_memory_bytes"][k] for s in per_subject
                                        if s["peak_memory_bytes"][k] is not None), default=None)
                                for k in per_subject[0]["peak_memory_bytes"]}
    out["frames"], out["keyframes"] = crops, None  # keyframes differ by subject: see `subjects`
    out["cache_bytes_per_frame"] = sum(s["cache_bytes_per_frame"] * s["frames"] for s in per_subject) / crops
    out["inversion_reused"] = all(s["inversion_reused"] for s in per_subject)
    out["subjects"] = [{"subject": t, **{k: s[k] for k in ("frames", "keyframes", "unet_evals", "seconds")}}
                       for t, s in zip(subjects, per_subject)]
    return out


def _signature(models: Models, n: int, size: tuple[int, int], settings: Settings) -> tuple:
    """Everything an inversion depends on: the model, the frames' count and model size, the hook
    layout and the settings marked `inversion` in Settings; a cached one is reused only when this matches."""
    return (models.identity_string, models.weights_digest, n, size, HOOK_LAYOUT,
            *((name, getattr(settings, name)) for name in inversion_fields()))


def inversion_key(stack: np.ndarray, signature: tuple) -> str:
    """Digest of the model-ready frames and everything else the inversion depends on."""
    h = hashlib.sha256(json.dumps(signature, default=str).encode())
    h.update(np.ascontiguousarray(stack).data)
    return h.hexdigest()


class Editor:
    """Holds the loaded models; `edit` may be called many times (models stay resident)."""

    def __init__(self, model: str = DEFAULT_MODEL, *, identity: str | None = None, direction: str | None = None,
                 device: str = "auto", dtype: str = "auto", model_config: str | None = None,
                 models: Models | None = None, cache_folder: str | Path | None = None):
        """`cache_folder`: where an inversion larger than `Settings.cache_host_bytes` spills
        (the engine server passes its state folder); default the system temp folder."""
        start = time.perf_counter()
        self.cache_folder = cache_folder
        self.models = models or load_models(model, identity=identity, direction=direction,
                                            device=device, dtype=dtype, config=model_config)
        self.load_seconds = time.perf_counter() - start
        self._face_models: dict[tuple, object] = {}  # detector / embedder, loaded on first use

    def _face_model(self, kind: str, name: str, models: str | None):
        key = (kind, name, models)
        if key not in self._face_models:
            from engine.faces import load_detector
            from engine.metrics.embed import load_embedder

            self._face_models[key] = (load_detector if kind == "detector" else load_embedder)(name, models)
        return self._face_models[key]

    def invert(self, frames: Sequence[np.ndarray], settings: Settings | None = None, *,
               progress: Progress | None = None, cancel: CancelCheck | None = None) -> Inversion:
        """Encode and invert a clip once; pass the result to `edit(..., inversion=)` to
        re-edit it with other prompts without inverting again. Inverts what `edit` edits:
        the face crops (one subject) or the whole frames."""
        from engine.faces import prepare

        settings = settings or Settings()
        plan = prepare(frames, settings, native=self.models.native_resolution,
                       detector=self._face_model("detector", settings.face_detector, settings.face_models))
        if len(plan.groups) != 1:
            raise UserError("an inversion covers one face: set face_subject to a track number, or use full mode.")
        stack, _ = as_float_frames(plan.clips()[0])
        meter = Meter(self.models.device, len(stack) * settings.steps, progress, cancel)
        with FeatureHooks(*self.models.unets()) as hooks, meter.cancellable(*self.models.unets()):
            return self._invert(stack, settings.replace(resolution=None), meter, hooks)

    def _invert(self, stack: np.ndarray, settings: Settings, meter: Meter, hooks: FeatureHooks) -> Inversion:
        m = self.models
        n, h, w = stack.shape[:3]
        size = model_size(h, w, settings, m.unet_multiple)
        with meter.stage("encode"):
            latents = encode(m, model_pixels(stack, size), meter, settings.vae_batch_size)
        with meter.stage("invert"):
            schedule = Schedule.build(m.scheduler_config, settings, m.device)
            inv = invert(m, latents, plan_keyframes(n, settings), schedule, settings, meter, hooks,
                         self.cache_folder)
        inv.signature = _signature(m, n, size, settings)
        return inv

    def edit(self, frames: Sequence[np.ndarray], prompt: str, settings: Settings | None = None, *,
             progress: Progress | None = None, cancel: CancelCheck | None = None,
             inversion: Inversion | None = None, preview: Preview | None = None,
             inversions: InversionCache | None = None) -> EditResult:
        """Find and crop the face(s) (or take the whole frame), edit each subject's crops as a
        clip, paste back at full resolution, measure QC. Frames without a face pass through.
        `preview` gets the first subject's first keyframe pasted into its frame."""
        from engine.faces import paste, paste_crop, prepare
        from engine.metrics import qc as measure

        settings = settings or Settings()
        check_clip(frames, prompt)
        start = time.perf_counter()
        plan = prepare(frames, settings, native=self.models.native_resolution,
                       detector=self._face_model("detector", settings.face_detector, settings.face_models))
        if all(s == "invalid" for s in plan.status):
            raise UserError(f"no usable frame: {plan.notes[0]}.")
        face_seconds = time.perf_counter() - start
        edited: list[np.ndarray] = []
        result, per_subject = None, []
        for g, clip in enumerate(plan.clips()):
            first = plan.groups[g][0]
            shown = None
            if preview is not None and g == 0:
                def shown(k: int, crop: np.ndarray, first: int = first) -> None:
                    i = plan.crop_frames[first + k]
                    preview(i, paste_crop(frames[i], first + k, crop, plan, settings))
            # crops are already model-sized (full mode: not square), so no further resize
            result = self.edit_crops(clip, prompt, settings.replace(resolution=None), cancel=cancel,
                                     progress=_share(progress, first / len(plan.crops), len(clip) / len(plan.crops)),
                                     inversion=inversion if len(plan.groups) == 1 else None, preview=shown,
                                     inversions=inversions)
            edited += result.frames
            per_subject.append(result.stats)
        start = time.perf_counter()
        out = paste(frames, edited, plan, settings)
        face_seconds += time.perf_counter() - start
        stats = _summed(per_subject, plan.subjects) if result else \
            {"seconds": {"total": 0.0}, "unet_evals": {"total": 0, "per_frame": 0.0}}
        report = None
        if settings.qc_every:
            embedder = None
            if plan.mode == "crop" and plan.crops:
                embedder = self._face_model("embedder", settings.face_embedder, settings.face_models)
            report = measure(frames, out, plan, embedder=embedder, settings=settings)
            stats["seconds"]["qc"] = report["seconds"]
        stats["seconds"]["faces"] = round(face_seconds, 4)
        stats["faces"] = plan.summary()
        if not plan.crops:  # no face anywhere (crop/auto mode): the frames as they came, no model run
            warned = prompt_warnings(self.models.tokenizer, check_prompt(prompt), settings)
            stats.update(no_face=True, warnings=[*warned, NO_FACE])
        return EditResult(out, stats, result.inversion if result and len(plan.groups) == 1 else None, report)

    def edit_crops(self, frames: Sequence[np.ndarray], prompt: str, settings: Settings | None = None, *,
                   progress: Progress | None = None, cancel: CancelCheck | None = None,
                   inversion: Inversion | None = None, preview: Preview | None = None,
                   inversions: InversionCache | None = None) -> EditResult:
        """The core edit on model-ready frames (one clip of crops, all the same size).
        `preview(k, frame)` gets the first keyframe k before the other frames are decoded;
        `inversions` is looked up (by `inversion_key`) before inverting and filled after."""
        settings = settings or Settings()
        prompt = check_prompt(prompt)
        m = self.models
        stack, in_dtype = as_float_frames(frames)
        n, h, w = stack.shape[:3]
        size = model_size(h, w, settings, m.unet_multiple)
        signature = _signature(m, n, size, settings)
        if inversion is not None and inversion.signature != signature:
            raise UserError("the given inversion was made for other frames, model or settings; invert again.")
        key = None
        if inversion is None and inversions is not None:
            key = inversion_key(stack, signature)
            found = inversions.get(key, lambda path: inversion_file.load(path, m, settings, self.cache_folder))
            inversion = found if found is not None and found.signature == signature else None
        branches = 2 if settings.guidance_scale > 1 else 1
        passes = (0 if inversion else 1) + branches + (settings.source_features == "recompute")
        cached = settings.source_features == "cached"  # the keyframes' q/k are re-run in the attention steps
        rerun = len(plan_keyframes(n, settings).keyframes) * Schedule.attn_steps_of(settings) if cached else 0
        meter = Meter(m.device, n * settings.steps * passes + rerun, progress, cancel)
        reused = inversion is not None
        with FeatureHooks(*m.unets()) as hooks, meter.cancellable(*m.unets()):
            if inversion is None:
                inversion = self._invert(stack, settings, meter, hooks)
                if key is not None:
                    inversions.put(key, inversion)
            del stack  # the float frames are encoded: memory outside the cache stays flat in clip length
            with meter.stage("edit"):
                edited = edit_latents(m, inversion, prompt, settings, meter, hooks)
            with meter.stage("decode"):
                meter.report("decode", 0, 1.0)
                out = self._decode(edited, inversion.plan.keyframes[0], settings, meter, preview, (h, w), in_dtype)
        stats = meter.stats(n)
        stats["seconds"]["load"] = round(self.load_seconds, 4)
        stats.update(
            model=m.identity_string, random_weights=m.random_weights, device=str(m.device),
            dtype=str(m.dtype).removeprefix("torch."), frames=n, model_size=list(size),
            keyframes=list(inversion.plan.keyframes), steps=settings.steps, source_features=settings.source_features,
            inversion_reused=reused, inversion_cache=None if key is None else ("hit" if reused else "miss"),
            cache_bytes_per_frame=inversion.store.nbytes / n,
            cache_bytes={"device": inversion.store.device_bytes, "host": inversion.store.host_bytes,
                         "spilled": inversion.store.spill_bytes},
            settings=settings.to_dict(), prompt=prompt, warnings=prompt_warnings(m.tokenizer, prompt, settings),
        )
        return EditResult(out, stats, inversion)

    def _decode(self, latents: torch.Tensor, first: int, settings: Settings, meter: Meter, preview: Preview | None,
                size: tuple[int, int], dtype: np.dtype) -> list[np.ndarray]:
        """Decode every frame; with a preview, keyframe `first` alone first and shown at once."""
        m, batch = self.models, settings.vae_batch_size

        def frames(z: torch.Tensor) -> list[np.ndarray]:  # batch by batch into the output type
            return [f for images in decode(m, z, meter, batch) for f in to_output(images.numpy(), size, dtype)]

        if preview is None:
            return frames(latents)
        head = frames(latents[first:first + 1])
        preview(first, head[0])
        rest = torch.cat([latents[:first], latents[first + 1:]])
        tail = frames(rest) if len(rest) else []
        return tail[:first] + head + tail[first:]
