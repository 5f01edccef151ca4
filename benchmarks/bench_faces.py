"""Benchmark the face work around an edit: detection + tracking + crop, paste-back, QC.

In: clip length, frame height (1080 = 1920×1080, 2160 = UHD), number of faces, model
resolution, whether to also run a tiny-preset edit on the crops. Out (stdout): the machine,
frames per second of each stage, the share of a tiny-preset edit (CPU) spent on face work,
and the estimated share of a real GPU edit, from the per-frame face cost and the GPU edit's
per-frame time (default 1.2 s: the paper's 300 frames in ~6 min on one A100, Sec. 5.4;
`--gpu-seconds-per-frame` to use your own). `--json OUT` writes the numbers.

The clip is real faces (engine.faces.samples: packaged photos) under synthetic head motion,
placed in full-size frames.

    python benchmarks/bench_faces.py                  # 1080p, 48 frames, one face
    python benchmarks/bench_faces.py --height 2160 --faces 2 --frames 24
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from engine.faces import load_detector, paste, prepare, samples  # noqa: E402
from engine.faces.samples import Actor  # noqa: E402
from engine.metrics.embed import load_embedder  # noqa: E402
from engine.metrics.quality import qc  # noqa: E402
from engine.settings import Settings  # noqa: E402

GOAL_SHARE = 0.10  # face work ≤ 10 % of a real GPU edit's time
PAPER_GPU_SECONDS_PER_FRAME = 6 * 60 / 300  # IP-FaceDiff Sec. 5.4: 300 frames in ~6 min on an A100


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=48)
    p.add_argument("--height", type=int, default=1080, help="frame height; width is 16:9")
    p.add_argument("--faces", type=int, default=1, choices=[1, 2])
    p.add_argument("--resolution", type=int, default=512, help="model (crop) resolution")
    p.add_argument("--edit-frames", type=int, default=8, help="frames of the tiny-preset edit (0: skip)")
    p.add_argument("--gpu-seconds-per-frame", type=float, default=PAPER_GPU_SECONDS_PER_FRAME)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)

    h = args.height
    w = h * 16 // 9
    k = h / 1080
    actors = [Actor("astronaut", (0.4 * w, 0.48 * h), 300 * k, rotate=8, zoom=0.12, shift=(60 * k, 30 * k), period=24)]
    if args.faces == 2:
        actors.append(Actor("grace_hopper", (0.75 * w, 0.5 * h), 220 * k, zoom=0.05, shift=(20 * k, 10 * k), period=30))
    frames, _ = samples.clip(actors, args.frames, size=(h, w), brightness=0.1, blur={5: 9}, jpeg=80, noise=2)
    settings = Settings(resolution=args.resolution, face_subject="all" if args.faces == 2 else "largest")
    detector, t_load_det = _timed(lambda: load_detector(settings.face_detector))
    embedder, t_load_emb = _timed(lambda: load_embedder(settings.face_embedder))

    plan, t_prepare = _timed(lambda: prepare(frames, settings, detector=detector))
    n, crops = len(frames), len(plan.crops)
    edited = [np.clip(c * 1.05, 0, 1) for c in plan.crops]
    _, t_paste = _timed(lambda: paste(frames, edited, plan, settings))
    _, t_paste_r = _timed(lambda: paste(frames, edited, plan, settings.replace(face_paste="replace")))
    out = paste(frames, edited, plan, settings)
    result, t_qc = _timed(lambda: qc(frames, out, plan, embedder=embedder, settings=settings))
    # the detection/tracking share of prepare: time the crops alone
    from engine.faces.crop import extract

    _, t_crops = _timed(lambda: [extract(frames[i], b, args.resolution)
                                 for i, b in zip(plan.crop_frames, plan.crop_boxes)])
    face_work = t_prepare + t_paste  # per edit: detect+track+crop, paste-back
    per_frame = face_work / n
    rows = {
        "detect + track + smooth + crop": t_prepare,
        "  of which crop resampling": t_crops,
        "paste-back (delta)": t_paste,
        "paste-back (replace)": t_paste_r,
        "face work (prepare + paste)": face_work,
        "QC (identity ×2 embeddings + warp error)": t_qc,
    }
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"clip: {n} frames {w}×{h}, {args.faces} face(s), crops {args.resolution}² ({crops} crops), "
          f"detector {plan.detector}, embedder {embedder.name}; model load {t_load_det:.2f} s + {t_load_emb:.2f} s")
    print(f"{'stage':<44}{'seconds':>9}{'ms/frame':>10}{'fps':>8}")
    for name, t in rows.items():
        print(f"{name:<44}{t:>9.2f}{1000 * t / n:>10.1f}{n / t:>8.1f}")
    share_gpu = per_frame / (per_frame + args.gpu_seconds_per_frame)
    report = {"frames": n, "width": w, "height": h, "faces": args.faces, "resolution": args.resolution,
              "seconds": rows, "face_ms_per_frame": 1000 * per_frame, "qc_ms_per_frame": 1000 * t_qc / n,
              "gpu_seconds_per_frame": args.gpu_seconds_per_frame, "share_of_gpu_edit": share_gpu,
              "identity_mean": result["identity_mean"]}
    if args.edit_frames:
        from engine.editor import Editor

        editor = Editor("tiny")
        m = min(args.edit_frames, crops)
        tiny = Settings(resolution=64, steps=10)
        sub = prepare(frames[:m], tiny, detector=detector)
        r, t_edit = _timed(lambda: editor.edit_crops(sub.crops, "a photo of a person's face wearing glasses", tiny))
        _, t_sub_paste = _timed(lambda: paste(frames[:m], r.frames, sub, tiny))
        share_tiny = (sub.seconds + t_sub_paste) / (sub.seconds + t_sub_paste + t_edit)
        print(f"tiny-preset edit ({m} crops of 64², 10 steps, CPU): {t_edit:.2f} s; face work "
              f"{sub.seconds + t_sub_paste:.2f} s = {100 * share_tiny:.0f} % of the job (random weights: cost only)")
        report.update(tiny_edit_seconds=t_edit, share_of_tiny_edit=share_tiny)
    ok = share_gpu <= GOAL_SHARE
    print(f"face work {1000 * per_frame:.0f} ms/frame vs a GPU edit at {args.gpu_seconds_per_frame:.2f} s/frame "
          f"→ {100 * share_gpu:.1f} % of the job (goal ≤ {100 * GOAL_SHARE:.0f} %: {'met' if ok else 'NOT met'}); "
          f"QC adds {1000 * t_qc / n:.0f} ms/frame")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
