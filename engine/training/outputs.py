"""What a training run writes besides the weights: loss logs, sample grids, the model card.

Layout of `--out`: the adapter (`pytorch_lora_weights.safetensors`) or `unet/` (full
fine-tune), `model_card.json` + `README.md`, `logs/losses.csv` (and `logs/tensorboard/`
when tensorboard is installed), `samples/step_NNNNNN.png`, `checkpoints/step_NNNNNN/`.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from engine.presets import PRESETS


class LossLog:
    """One CSV row per optimizer step; TensorBoard scalars when `tensorboard` is importable."""

    def __init__(self, folder: Path, resume_step: int = 0):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "losses.csv"
        self.columns: list[str] | None = None
        if self.path.exists() and resume_step > 0:  # keep rows up to the resumed step
            with self.path.open(newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= resume_step]
            if rows:
                self.columns = list(rows[0])
                self._write_all(rows)
        elif self.path.exists():
            self.path.unlink()
        self.writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(folder / "tensorboard"), purge_step=resume_step + 1 if resume_step else None)
        except ImportError:  # tensorboard not installed: CSV only
            pass

    def _write_all(self, rows: list[dict]) -> None:
        with self.path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self.columns)
            w.writeheader()
            w.writerows(rows)

    def __call__(self, step: int, values: dict[str, float]) -> None:
        row = {"step": step, **{k: f"{v:.6g}" if isinstance(v, float) else v for k, v in values.items()},
               "time": f"{time.time():.3f}"}
        new = self.columns is None
        if new:
            self.columns = list(row)
        with self.path.open("a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)
        if self.writer is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)):
                    self.writer.add_scalar(f"train/{k}", v, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _label(text: str, width: int, height: int = 14, colour: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    strip = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(strip, text[: max(1, width // 6)], (2, height - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.33, colour, 1,
                cv2.LINE_AA)
    return strip


def write_grid(path: Path, rows: list[tuple[str, torch.Tensor]], pad: int = 2, caption: str | None = None) -> Path:
    """A PNG grid: one labelled row per (name, images [B, 3, H, W] in [-1, 1]), under `caption`
    (in red: e.g. the random-weights label) when given."""
    blocks = []
    for name, images in rows:
        imgs = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        h, w = imgs.shape[1:3]
        line = np.full((h, len(imgs) * (w + pad) - pad, 3), 255, np.uint8)
        for i, img in enumerate(imgs):
            line[:, i * (w + pad):i * (w + pad) + w] = img
        blocks += [_label(name, line.shape[1]), line, np.full((pad, line.shape[1], 3), 255, np.uint8)]
    if caption is not None:
        blocks.insert(0, _label(caption, blocks[0].shape[1], colour=(200, 0, 0)))
    grid = np.concatenate(blocks)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    return path


def write_card(out: Path, card: dict) -> None:
    """`model_card.json` (machine-readable) and a short `README.md` beside the weights."""
    (out / "model_card.json").write_text(json.dumps(card, indent=2, default=str) + "\n")
    role = card["role"]
    flag = "ε1 (identity, Eq. 5)" if role == "identity" else "ε2 (direction, Eq. 6)"
    load = "--identity-model" if role == "identity" else "--direction-model"
    base = ("--preset " if card["base_model"] in PRESETS else "--model ") + str(card["base_model"])
    lines = [
        f"# IP-FaceDiff {flag}",
        "",
        f"- base model: `{card['base_model']}`" + (" (RANDOM WEIGHTS: a test run, not a usable model)"
                                                  if card.get("random_weights") else ""),
        f"- weights: {card['weights']}",
        f"- data: {card['data']['images']} images from `{card['data']['folder']}` at {card['data']['resolution']}²",
        f"- steps: {card['steps']} (batch {card['settings']['batch_size']} × {card['world_size']} processes × "
        f"{card['settings']['grad_accum']} accumulation)",
        f"- final losses (mean of the last {card['final_losses_window']} steps): "
        + ", ".join(f"{k} {v:.4g}" for k, v in card["final_losses"].items()),
        "",
        f"Use: `ipfacediff edit CLIP {base} {load} {out}` (the base must be the same model).",
        "",
        "All settings are in `model_card.json`.",
    ]
    (out / "README.md").write_text("\n".join(lines) + "\n")
