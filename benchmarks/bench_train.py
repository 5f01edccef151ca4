"""Benchmark fine-tuning: optimizer steps per second and peak memory, for ε1 and ε2.

In: a model (`--preset tiny|sd21-base` or `--model`), image side, batch size, steps,
precision options. Out (stdout): the machine and one row per role — steps/s and images/s
(steady state: the first `--warmup` steps are excluded), seconds per step, peak memory
(CUDA: max allocated; CPU: peak RSS of the process), trainable parameters. `--json OUT`
writes it all.

Data: 16+ face crops made from packaged photos (`engine.training.samples`). Scorers: on
the tiny preset the tiny face embedder and tiny CLIP; otherwise (`--scorers full`, the
default for sd21-base) an ArcFace iresnet50 and a CLIP ViT-L/14, both with random weights
built in code, so the cost is the real models' (no download).

    python benchmarks/bench_train.py --preset tiny --size 64 --batch-size 2
    python benchmarks/bench_train.py --preset sd21-base --size 512 --batch-size 16 \
        --mixed-precision bf16 --gradient-checkpointing          # on a GPU (the paper: 2×A100)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from engine.training.clip import Clip, tiny_clip  # noqa: E402
from engine.training.embedders import ArcFace, IResNet, TinyFaceEmbedder  # noqa: E402
from engine.training.config import TrainConfig  # noqa: E402
from engine.training.loop import Trainer  # noqa: E402
from engine.training.samples import make_face_folder  # noqa: E402


def vit_l14_clip() -> Clip:
    """CLIP ViT-L/14 shapes (openai/clip-vit-large-patch14) with random weights."""
    from transformers import CLIPConfig, CLIPModel

    from engine.presets import tiny_tokenizer

    config = CLIPConfig(
        text_config=dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                         num_hidden_layers=12, max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1),
        vision_config=dict(image_size=224, patch_size=14, hidden_size=1024, intermediate_size=4096,
                           num_attention_heads=16, num_hidden_layers=24),
        projection_dim=768)
    return Clip(CLIPModel(config), tiny_tokenizer(), name="clip-vit-l14-random")


def machine() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name(0)
    else:
        info["device"] = "cpu"
        try:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                               if line.startswith("model name"))
        except (OSError, StopIteration):
            info["cpu"] = platform.machine()
        info["cores"] = os.cpu_count()
    return info


def bench(role: str, args, data: Path, out: Path) -> dict:
    full_scorers = args.scorers == "full" or (args.scorers == "auto" and (args.preset or "") != "tiny")
    embedder = ArcFace(IResNet(fused=True).eval()) if full_scorers else TinyFaceEmbedder()
    clip = vit_l14_clip() if full_scorers else tiny_clip()
    cfg = TrainConfig(role=role, data=str(data), out=str(out / role), model=args.preset or args.model,
                      resolution=args.size, batch_size=args.batch_size, grad_accum=1, max_steps=args.warmup + args.steps,
                      mixed_precision=args.mixed_precision, gradient_checkpointing=args.gradient_checkpointing,
                      full=args.full, lora_rank=args.lora_rank, checkpoint_every=0, sample_every=0,
                      workers=args.workers, edits="builtin", cpu=args.cpu)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer = Trainer(cfg, embedder=embedder if role == "identity" else None,
                      clip=clip if role == "direction" else None, say=lambda m: None, progress=False)
    summary = trainer.run()
    with open(out / role / "logs" / "losses.csv", newline="") as fh:
        times = [float(r["time"]) for r in csv.DictReader(fh)]
    timed = times[args.warmup - 1:] if args.warmup else times
    seconds = (timed[-1] - timed[0]) / max(1, len(timed) - 1)
    if torch.cuda.is_available():
        peak = torch.cuda.max_memory_allocated() / 2 ** 30
        where = "cuda max allocated"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
        where = "process peak RSS"
    del trainer
    return {"role": role, "steps_per_second": round(1 / seconds, 4), "images_per_second": round(args.batch_size / seconds, 3),
            "seconds_per_step": round(seconds, 4), "peak_gib": round(peak, 3), "peak_kind": where,
            "trainable_parameters": summary["trainable_parameters"], "final_losses": summary["final_losses"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    m = p.add_mutually_exclusive_group()
    m.add_argument("--preset", default=None)
    m.add_argument("--model")
    p.add_argument("--role", choices=["identity", "direction", "both"], default="both")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    p.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], default="no")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--full", action="store_true", help="full fine-tune instead of LoRA")
    p.add_argument("--lora-rank", type=int, default=16)
    p.add_argument("--scorers", choices=["auto", "tiny", "full"], default="auto")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="CPU intra-op threads (0: torch's default)")
    p.add_argument("--cpu", action="store_true")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    if not args.preset and not args.model:
        args.preset = "tiny"
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = make_face_folder(Path(tmp) / "faces", n=max(16, args.batch_size), size=max(args.size, 64))
        for role in (["identity", "direction"] if args.role == "both" else [args.role]):
            rows.append(bench(role, args, data, Path(tmp)))
    info = {"machine": machine(), "model": args.preset or args.model, "size": args.size,
            "batch_size": args.batch_size, "mixed_precision": args.mixed_precision,
            "gradient_checkpointing": args.gradient_checkpointing, "weights": "full" if args.full else f"lora r{args.lora_rank}",
            "rows": rows}
    print(json.dumps(info["machine"]))
    print(f"{info['model']} {args.size}² batch {args.batch_size} {info['weights']} precision {args.mixed_precision}"
          f"{' +checkpointing' if args.gradient_checkpointing else ''}")
    print(f"{'role':<10} {'steps/s':>9} {'images/s':>9} {'s/step':>8} {'peak GiB':>9}  trainable")
    for r in rows:
        print(f"{r['role']:<10} {r['steps_per_second']:>9.3f} {r['images_per_second']:>9.2f} {r['seconds_per_step']:>8.3f} "
              f"{r['peak_gib']:>9.2f}  {r['trainable_parameters']:,} ({r['peak_kind']})")
    if args.json:
        args.json.write_text(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
