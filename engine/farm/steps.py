"""The work of each farm step, on one node.

In: the job spec, the shot, the output and job folders, the node's device, a `TaskStatus`.
Out: files. `keyframes`: the face plan and `keyframes.safetensors` (the encoded source latent
and the edited clean latent of each keyframe more than one chunk needs: the anchors and the
spine keyframes between chunks) in the job folder, and the measured bytes per keyframe.
`propagate(chunk)`: the chunk's frames, written with the source's frame numbers (only its
own names, replaced if there — a retried task rewrites exactly its frames). `assemble`: QC
over the whole shot, report, contact sheet, preview movie and `done`; it never writes a
frame. A shot with no face (crop/auto mode) is never edited whole, as in `Editor.edit`:
keyframes runs no model and saves the empty plan, each chunk writes its frames unchanged,
and the keyframes stats, `done` and the task status say so (`no_face`, the warning).

A chunk edits the sub-clip "keyframes of the attention groups its frames depend on + its
frames" (`engine.farm.split`) with the engine's own `invert` and `edit`: the keyframe calls
are the shot's calls with the same inputs, so its keyframes are the one-machine edit's, and
the shared ones bit-identical to the Keyframes step's on the same kind of node (checked; a
node whose arithmetic differs is refused; their decoded frames come from the Keyframes
step's latents, so every chunk shows the same). Storing x_t per step would not save the
rebuild: the attn1 outputs need ε2 run on those keyframes anyway, which gives x_t for free.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from engine.attention import FeatureHooks
from engine.edit import edit as edit_latents
from engine.editor import NO_FACE, Editor
from engine.errors import UserError
from engine.farm import faceplan
from engine.farm.spec import FarmSpec, JobFolder
from engine.farm.split import bracketing, needed_groups, shared_groups, sub_plan
from engine.farm.status import TaskStatus
from engine.invert import decode, encode, invert
from engine.keyframes import KeyframePlan, plan_keyframes
from engine.meter import Meter
from engine.models import DEFAULT_MODEL, Models
from engine.pixels import as_float_frames, check_clip, model_pixels, model_size, to_output
from engine.schedule import Schedule
from engine.settings import Settings

REBUILD_TOLERANCE = 1e-4
"""Largest difference allowed between a chunk's rebuilt keyframe latents and the keyframes
step's (bit-identical on one kind of node; other GPUs or libraries round differently)."""


def _atomic_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _settings(spec: FarmSpec, device: str | None) -> Settings:
    settings = spec.edit_settings()
    return settings.replace(device=device) if device else settings


def _editor(spec: FarmSpec, settings: Settings) -> Editor:
    return Editor(spec.preset or spec.model or DEFAULT_MODEL,
                  identity=spec.identity_model, direction=spec.direction_model, device=settings.device,
                  dtype=settings.dtype, model_config=spec.model_config)


def _read(spec: FarmSpec, shot: str, start: int, stop: int):
    """Frames start..stop-1 of the shot (clip indices) as the editor sees them (`ModelFrames`)."""
    from engine.io import read_frames
    from engine.io.colour import ModelFrames

    clip = read_frames(shot, (spec.first + start, spec.first + stop - 1))
    if len(clip.frames) != stop - start or clip.first != spec.first + start:
        raise UserError(f"{shot} no longer holds frames {spec.first + start}-{spec.first + stop - 1} "
                        "as it did when the job was bundled.")
    return ModelFrames.prepare(clip, spec.input_colorspace, spec.output_colorspace, spec.format)


def _clip_of(plan) -> tuple[int, list[int]]:
    """(first crop index, the shot frame of each crop) of the one edited subject."""
    if len(plan.groups) > 1:
        raise UserError("a farm job edits one face: set --face-subject to a track number, or use --mode full.")
    a, b = plan.groups[0] if plan.groups else (0, 0)  # no face: nothing to edit, every frame passes through
    return a, list(plan.crop_frames[a:b])


def _edit_sub(models: Models, latents: torch.Tensor, sub: KeyframePlan, settings: Settings, prompt: str,
              meter: Meter) -> torch.Tensor:
    """The engine's inversion and edit of a sub-clip with its own keyframe plan."""
    schedule = Schedule.build(models.scheduler_config, settings, models.device)
    with FeatureHooks(*models.unets()) as hooks:
        with meter.stage("invert"):
            inv = invert(models, latents, sub, schedule, settings, meter, hooks)
        with meter.stage("edit"):
            return edit_latents(models, inv, prompt, settings, meter, hooks)


def _meter(models: Models, sub: KeyframePlan, settings: Settings, status: TaskStatus) -> Meter:
    branches = 2 if settings.guidance_scale > 1 else 1
    planned = sub.n_frames * settings.steps * (1 + branches) + len(sub.keyframes) * Schedule.attn_steps_of(settings)
    return Meter(models.device, planned, status.engine)


def _crops_latents(models: Models, crops: list[np.ndarray], settings: Settings, meter: Meter) -> torch.Tensor:
    """The crops encoded as `Editor.edit_crops` encodes them."""
    stack, _ = as_float_frames(crops)
    size = model_size(*stack.shape[1:3], settings, models.unet_multiple)
    return encode(models, model_pixels(stack, size), meter, settings.vae_batch_size)


def keyframes(spec: FarmSpec, shot: str, out: Path, job: JobFolder, device: str | None, status: TaskStatus,
              editor: Editor | None = None) -> dict:
    """Step 1; `editor`: models already loaded for this spec (else loaded here)."""
    from engine.cli import atomic_write_text
    from engine.faces import load_detector, prepare
    from engine.io import mark_random_weights
    from engine.prompts import check_prompt

    settings = _settings(spec, device)
    prompt = check_prompt(spec.prompt)
    status.stage("reading the shot and finding the face", 0, 10)
    working = _read(spec, shot, 0, spec.count)
    check_clip(working.frames, prompt)
    editor = editor or _editor(spec, settings)
    m = editor.models
    plan = prepare(working.frames, settings, native=m.native_resolution,
                   detector=load_detector(settings.face_detector, settings.face_models))
    if all(s == "invalid" for s in plan.status):
        raise UserError(f"no usable frame: {plan.notes[0]}.")
    a, frames = _clip_of(plan)
    if not frames:  # as Editor.edit: no model runs, Propagate writes the frames unchanged, Assemble says so
        job.root.mkdir(parents=True, exist_ok=True)
        stats = {"no_face": True, "warnings": [NO_FACE], "face_plan_bytes": faceplan.save(plan, job)}
        atomic_write_text(job.stats, json.dumps(stats, indent=1))
        status.status(f"warning: {NO_FACE}")
        return stats
    settings = settings.replace(resolution=None)  # crops are model-sized already, as in Editor.edit
    sub, members = _shared_keyframes(spec, plan_keyframes(len(frames), settings), frames)
    status.stage(f"editing the {len(members)} keyframes several chunks share", 10, 95)
    meter = _meter(m, sub, settings, status)
    if members:
        with meter.stage("encode"):
            source = _crops_latents(m, [plan.crops[a + f] for f in members], settings, meter)
        edited = _edit_sub(m, source, sub, settings, prompt, meter)
    else:  # one chunk: it edits every keyframe itself
        source = edited = torch.zeros(0)
    status.stage("writing the keyframe data", 95, 100)
    tensors = {"source": source.cpu().contiguous(), "edited": edited.cpu().contiguous()}
    job.root.mkdir(parents=True, exist_ok=True)
    plan_bytes = faceplan.save(plan, job)
    tmp = job.keyframes.with_name(f".{job.keyframes.name}.tmp")
    save_file(tensors, str(tmp), metadata={"keyframes": json.dumps(members)})
    tmp.replace(job.keyframes)
    out.mkdir(parents=True, exist_ok=True)
    mark_random_weights(out, m.random_weights)
    stats = meter.stats(max(len(members), 1))
    per_keyframe = job.keyframes.stat().st_size / len(members) if members else 0
    stats.update(keyframes=len(members), bytes_per_keyframe=per_keyframe,
                 face_plan_bytes=plan_bytes, model=m.identity_string, device=str(m.device))
    atomic_write_text(job.stats, json.dumps(stats, indent=1, default=str))
    status.progress(1.0)
    status.status(f"{len(members)} shared keyframes edited; {per_keyframe / 1024:.0f} KiB per keyframe")
    return stats


def _shared_keyframes(spec: FarmSpec, kplan: KeyframePlan, frames: list[int]) -> tuple[KeyframePlan, list[int]]:
    """(sub-clip plan, crop indices) of the keyframes more than one chunk needs: the Keyframes
    step edits them and every chunk that needs them checks its rebuild against them."""
    per_chunk = [[c for c, f in enumerate(frames) if start <= f < stop] for start, stop in spec.chunks]
    return sub_plan(kplan, [], shared_groups(kplan, per_chunk))


def _load_keyframes(job: JobFolder, members: list[int]) -> dict[str, torch.Tensor]:
    if not job.keyframes.exists():
        raise UserError(f"{job.root} holds no keyframe data: run the Keyframes step first.")
    with safe_open(str(job.keyframes), "pt") as f:
        made_for = json.loads((f.metadata() or {}).get("keyframes", "null"))
    if made_for != members:
        raise UserError(f"{job.keyframes} was made for other keyframes; run the Keyframes step again.")
    return load_file(str(job.keyframes))


def propagate(spec: FarmSpec, chunk: int, shot: str, out: Path, job: JobFolder, device: str | None,
              status: TaskStatus, editor: Editor | None = None) -> dict:
    """Step 2 for one chunk; `editor` as for `keyframes`."""
    from engine.cli import atomic_write_text
    from engine.faces.paste import paste_crop
    from engine.io import write_frames
    from engine.prompts import check_prompt

    if not 0 <= chunk < len(spec.chunks):
        raise UserError(f"chunk {chunk} does not exist; this job has chunks 0-{len(spec.chunks) - 1}.")
    start, stop = spec.chunks[chunk]
    settings = _settings(spec, device).replace(resolution=None)
    prompt = check_prompt(spec.prompt)
    status.stage(f"chunk {chunk}: frames {spec.first + start}-{spec.first + stop - 1}", 0, 5)
    plan = faceplan.load(job)
    a, frames = _clip_of(plan)
    mine = [c for c, f in enumerate(frames) if start <= f < stop]
    faceplan.read_crops(job, plan, [a + c for c in mine])
    working = _read(spec, shot, start, stop)
    pasted = [np.array(f, copy=True) for f in working.frames]
    stats: dict = {"chunk": chunk, "frames": stop - start}
    if mine:
        m = (editor or _editor(spec, settings)).models
        kplan = plan_keyframes(len(frames), settings)
        _, shared = _shared_keyframes(spec, kplan, frames)
        data = _load_keyframes(job, shared)
        row = {f: i for i, f in enumerate(shared)}
        sub, members = sub_plan(kplan, mine, needed_groups(kplan, bracketing(kplan, mine)))
        fresh = [f for f in members if f not in row]  # its own frames: a keyframe another chunk needs is shared
        status.stage(f"rebuilding {len(sub.keyframes)} keyframes and editing {len(mine)} frames", 5, 90)
        meter = _meter(m, sub, settings, status)
        crop = np.asarray(plan.crops[a + mine[0]])
        size, dtype = crop.shape[:2], crop.dtype  # what Editor.edit_crops gives back
        with meter.stage("encode"):
            encoded = dict(zip(fresh, _crops_latents(m, [plan.crops[a + f] for f in fresh], settings, meter))) \
                if fresh else {}
        x = _edit_sub(m, torch.stack([data["source"][row[f]].to(m.device) if f in row else encoded[f]
                                      for f in members]), sub, settings, prompt, meter)
        checked = [i for i, f in enumerate(members) if f in row]
        kept = data["edited"][[row[members[i]] for i in checked]]
        gap = (x[checked].cpu() - kept).abs().max().item() if checked else 0.0
        if gap > REBUILD_TOLERANCE:
            raise UserError(f"this node rebuilds the keyframes {gap:.2g} away from the Keyframes step's result; "
                            "run the job on nodes of one kind (GPU model, drivers, library versions).")
        status.stage("decoding and pasting", 90, 98)
        final = {f: data["edited"][row[f]] if f in row else x[i].cpu() for i, f in enumerate(members)}
        with meter.stage("decode"):
            latents = torch.stack([final[c] for c in mine]).to(m.device)
            crops = [f for images in decode(m, latents, meter, settings.vae_batch_size)
                     for f in to_output(images.numpy(), size, dtype)]
        for crop, c in zip(crops, mine):
            pasted[frames[c] - start] = paste_crop(working.frames[frames[c] - start], a + c, crop, plan, settings)
        stats.update(meter.stats(len(mine)), rebuilt_keyframes=len(sub.keyframes), checked_keyframes=len(checked),
                     rebuild_gap=gap)
    status.stage("writing frames", 98, 100)
    paths = write_frames(working.restore(pasted), out, start=spec.first + start, fmt=spec.format, overwrite=True,
                         name=spec.name)
    atomic_write_text(job.chunk_stats(chunk), json.dumps(stats, indent=1, default=str))
    status.progress(1.0)
    status.status(f"chunk {chunk}: wrote {len(paths)} frames")
    return stats


def assemble(spec: FarmSpec, shot: str, out: Path, job: JobFolder, status: TaskStatus) -> dict:
    from engine.cli import atomic_write_text
    from engine.demo import contact_sheet
    from engine.io import frame_names, read_frames
    from engine.io.colour import ModelFrames
    from engine.io.video import to_rgb8, write_video
    from engine.io.write import RANDOM_WEIGHTS_LABEL, RANDOM_WEIGHTS_MARKER
    from engine.metrics import qc as measure
    from engine.metrics.quality import numbered
    from engine.metrics.report import render_report, summary

    settings = spec.edit_settings()
    status.stage("reading the shot and the edited frames", 0, 20)
    plan = faceplan.load(job)  # QC reads boxes and faces, not the crops
    working = _read(spec, shot, 0, spec.count)
    ext = Path(frame_names(1, fmt=spec.format, name=spec.name)[0]).suffix
    written = read_frames(str(out / f"{spec.name}{ext}"), (spec.first, spec.first + spec.count - 1))
    if len(written.frames) != spec.count:
        raise UserError(f"{out} holds {len(written.frames)} of the shot's {spec.count} frames; "
                        "run the missing Propagate tasks first.")
    edited = ModelFrames.prepare(written, working.output_space, working.output_space, spec.format).frames
    random_weights = (out / RANDOM_WEIGHTS_MARKER).exists()  # the Keyframes step marks a random-weight model's frames
    status.stage("identity QC", 20, 80)
    embedder = None
    if plan.mode == "crop" and plan.crops and settings.qc_every:
        from engine.metrics.embed import load_embedder

        embedder = load_embedder(settings.face_embedder, settings.face_models)
    record = numbered(measure(working.frames, edited, plan, embedder=embedder, settings=settings),
                      spec.first) if settings.qc_every else None
    status.stage("report, contact sheet and preview", 80, 100)
    if record is not None:
        atomic_write_text(job.qc, json.dumps(record, indent=1, default=str))
        render_report(working.frames, edited, record, job.report, random_weights=random_weights)
        status.status("QC: " + summary(record))
    rgb = [to_rgb8(f) for f in working.frames], [to_rgb8(f) for f in edited]
    passed = [frame - spec.first for frame in (record or {}).get("passed_through", [])]
    label = f"{RANDOM_WEIGHTS_LABEL} " if random_weights else ""
    sheet = contact_sheet(*rgb, f"{label}{spec.prompt} (farm)", passed=passed)
    _atomic_bytes(job.contact_sheet, _png(sheet))
    write_video(job.preview, rgb[1], written.fps or 24.0)
    done = {"frames": spec.count, "first": spec.first, "drifted_frames": (record or {}).get("drifted_frames"),
            "random_weights": random_weights, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if plan.mode == "crop" and not plan.crop_frames:
        done.update(no_face=True, warnings=[NO_FACE])
        status.status(f"warning: {NO_FACE}")
    atomic_write_text(job.done, json.dumps(done, indent=1))
    status.progress(1.0)
    return done


def _png(rgb: np.ndarray) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding of the contact sheet failed")
    return data.tobytes()
