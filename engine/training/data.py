"""Training data: a folder of face images with captions, an edit list, resumable batches.

In: a folder of face images (CelebA-HQ-like, square, at least the training resolution;
searched recursively), optional captions (a `name.txt` beside an image, or one
`metadata.jsonl` / `captions.jsonl` with `{"file_name": ..., "text": ...}` lines, or a
`metadata.csv` / `captions.csv` with `file_name,text` columns; else the default caption),
an edit list for ε2. Out: `FaceFolder` items `{"pixels": [3, R, R] in [-1, 1], "caption",
"index"}`; `StepBatches`, an endless, seeded batch order that depends only on the
micro-batch counter (so `--resume` continues the exact same stream); `read_edits` and
`compose_target` for target prompts.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from engine.errors import UserError

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
CAPTION_FILES = ("metadata.jsonl", "captions.jsonl", "metadata.csv", "captions.csv")

# The paper's two edit categories (Sec. 4.2): facial attributes and facial features.
# A line with `{caption}` is a template; any other line is appended to the caption.
BUILTIN_EDITS = [
    # facial attributes
    "wearing glasses", "wearing sunglasses", "with a beard", "with a mustache", "with a goatee",
    "with blonde hair", "with black hair", "with red hair", "with grey hair", "with bangs", "bald",
    "wearing lipstick", "wearing heavy makeup", "wearing a hat", "wearing earrings",
    # facial features
    "as an old person", "as a young person", "as a child", "as a man", "as a woman",
    "smiling", "laughing", "with a surprised expression", "with an angry expression",
    "with a sad expression", "with the mouth open", "with rosy cheeks", "with bushy eyebrows",
]


def _captions(folder: Path, files: list[Path], default: str) -> list[str]:
    table: dict[str, str] = {}
    for name in CAPTION_FILES:
        path = folder / name
        if not path.exists():
            continue
        try:
            if path.suffix == ".jsonl":
                for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                    if line.strip():
                        row = json.loads(line)
                        table[str(row["file_name"])] = str(row.get("text", row.get("caption", "")))
            else:
                with path.open(newline="", encoding="utf-8") as fh:
                    for row in csv.DictReader(fh):
                        table[str(row["file_name"])] = str(row.get("text") or row.get("caption") or "")
        except (ValueError, KeyError, TypeError, csv.Error) as exc:
            raise UserError(f"the caption file {path} cannot be read: every entry needs 'file_name' and "
                            f"'text' ({type(exc).__name__}: {exc}).") from None
        break
    out = []
    for f in files:
        sidecar = f.with_suffix(".txt")
        text = sidecar.read_text(encoding="utf-8").strip() if sidecar.exists() else table.get(
            f.relative_to(folder).as_posix(), table.get(f.name, ""))
        out.append(text.strip() or default)
    return out


class FaceFolder(torch.utils.data.Dataset):
    """Images of a folder, resized (shorter side) and centre-cropped to `resolution`².
    Index i in [N, 2N) is image i − N flipped left-right (the batch order decides flips)."""

    def __init__(self, folder: str | Path, resolution: int, caption: str):
        folder = Path(folder).expanduser()
        if not folder.exists():
            raise UserError(f"the data folder {folder} does not exist.")
        if not folder.is_dir():
            raise UserError(f"the data path {folder} is not a folder of images.")
        try:
            files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
        except OSError as exc:
            raise UserError(f"the data folder {folder} cannot be read ({exc.strerror or exc}).") from None
        if not files:
            raise UserError(f"the data folder {folder} holds no images ({', '.join(sorted(IMAGE_EXTS))}).")
        sizes, unreadable = [], []
        for p in files:
            try:
                with Image.open(p) as im:
                    sizes.append(im.size)
            except (OSError, UnidentifiedImageError, ValueError):
                unreadable.append(p)
        if unreadable:
            raise UserError(f"{len(unreadable)} of {len(files)} images in {folder} cannot be read "
                            f"(e.g. {unreadable[0]}); remove or fix them.")
        small = [(p, s) for p, s in zip(files, sizes) if min(s) < resolution]
        if small:
            (p, (w, h)) = small[0]
            raise UserError(f"{len(small)} of {len(files)} images are smaller than the training resolution "
                            f"{resolution}×{resolution} (e.g. {p.name}: {w}×{h}); use larger images or a "
                            f"smaller --resolution.")
        self.folder, self.files, self.resolution = folder, files, resolution
        self.captions = _captions(folder, files, caption)

    def __len__(self) -> int:
        return len(self.files)

    def load(self, i: int, flip: bool = False) -> np.ndarray:
        """Image i as float32 RGB [R, R, 3] in 0..1."""
        path = self.files[i]
        try:
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as exc:
            raise UserError(f"the image {path} cannot be decoded ({exc}).") from None
        h, w = rgb.shape[:2]
        r = self.resolution
        scale = r / min(h, w)
        nh, nw = max(r, round(h * scale)), max(r, round(w * scale))
        if (nh, nw) != (h, w):
            rgb = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        top, left = (nh - r) // 2, (nw - r) // 2
        rgb = rgb[top:top + r, left:left + r]
        if flip:
            rgb = rgb[:, ::-1]
        return np.ascontiguousarray(rgb, dtype=np.float32) / 255.0

    def __getitem__(self, index: int) -> dict:
        i, flip = index % len(self.files), index >= len(self.files)
        pixels = torch.from_numpy(self.load(i, flip)).permute(2, 0, 1) * 2 - 1
        return {"pixels": pixels, "caption": self.captions[i], "index": i}


class StepBatches(torch.utils.data.Sampler):
    """Endless batches of dataset indices (≥ N means flipped) for one process. The stream is
    a function of (seed, micro-batch counter) only: epoch e is a seeded permutation, and
    process r of `world` takes every world-th batch. `fixed` repeats the first batch."""

    def __init__(self, n: int, batch_size: int, seed: int, *, start: int = 0, rank: int = 0, world: int = 1,
                 flip: bool = True, fixed: bool = False):
        self.n, self.batch, self.seed, self.start = n, batch_size, seed, start
        self.rank, self.world, self.flip, self.fixed = rank, world, flip, fixed
        self._epoch: tuple[int, np.ndarray] | None = None

    def _order(self, epoch: int) -> np.ndarray:
        if self._epoch is None or self._epoch[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            order = rng.permutation(self.n)
            if self.flip:
                order = order + self.n * rng.integers(0, 2, self.n)
            self._epoch = (epoch, order)
        return self._epoch[1]

    def batch_at(self, k: int) -> list[int]:
        if self.fixed:
            k = 0
        first = (k * self.world + self.rank) * self.batch
        return [int(self._order(p // self.n)[p % self.n]) for p in range(first, first + self.batch)]

    def __iter__(self) -> Iterator[list[int]]:
        k = self.start
        while True:
            yield self.batch_at(k)
            k += 1

    def __len__(self) -> int:  # endless; a length only for DataLoader's bookkeeping
        return 2 ** 62


def collate(items: list[dict]) -> dict:
    return {"pixels": torch.stack([it["pixels"] for it in items]),
            "caption": [it["caption"] for it in items], "index": [it["index"] for it in items]}


def read_edits(spec: str | Path | None) -> list[str]:
    """Target edits: `builtin` (the paper's categories) or a file, one edit a line (`#`
    comments), or a JSON list of strings."""
    if spec is None or str(spec).strip() == "":
        raise UserError("direction training needs an edit list: --edits FILE (one edit a line, e.g. "
                        "'wearing glasses') or --edits builtin.")
    if str(spec) == "builtin":
        return list(BUILTIN_EDITS)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise UserError(f"the edit list {path} does not exist.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"the edit list {path} cannot be read ({exc}).") from None
    if path.suffix == ".json":
        try:
            edits = [str(e).strip() for e in json.loads(text)]
        except (ValueError, TypeError):
            raise UserError(f"the edit list {path} is not a JSON list of strings.") from None
    else:
        edits = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    edits = [e for e in edits if e]
    if not edits:
        raise UserError(f"the edit list {path} holds no edits.")
    return edits


def compose_target(caption: str, edit: str) -> str:
    """Target prompt: the edit's `{caption}` template filled in, or the edit appended."""
    base = caption.strip().rstrip(".")
    if "{caption}" in edit:
        return edit.replace("{caption}", base)
    return f"{base}, {edit}"
