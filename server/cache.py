"""Inversion cache: a clip already inverted (same pixels, model, steps, keyframe plan) is not inverted again.

In: RGB frames (numpy), `Settings`, the model identity. Out: `key(...)` (a hex digest) and an
LRU map key -> `engine.invert.Inversion`, bounded by the inversions' tensor bytes. In memory
(device or host, wherever the engine's TensorStore put it); no disk tier yet.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import Any

# Settings that only shape the editing pass. Every other field (steps, source prompt, keyframe
# plan, injection, face crop, and any field added later) is part of the key: a new field can
# cost a cache miss, never a wrong hit.
EDIT_ONLY_FIELDS = ("guidance_scale", "negative_prompt", "batch_size", "vae_batch_size", "device", "dtype",
                    "offload_cache")


def key(frames: list[Any], settings: Any, model: str) -> str:
    """Digest of the pixels (dtype, shape, bytes of every frame), the model and the inversion settings."""
    h = hashlib.sha256()
    values = settings.to_dict()
    inverted = {k: v for k, v in values.items() if k not in EDIT_ONLY_FIELDS}
    h.update(json.dumps({"model": model, **inverted}, sort_keys=True, default=str).encode())
    for f in frames:
        h.update(f"{f.dtype.str}{f.shape}".encode())
        h.update(memoryview(f).cast("B") if f.flags.c_contiguous else f.tobytes())
    return h.hexdigest()


def nbytes(inversion: Any) -> int:
    return int(inversion.store.nbytes)


class InversionCache:
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.items: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self.bytes = 0
        self.hits = self.misses = 0
        self.lock = threading.Lock()

    def get(self, k: str) -> Any | None:
        with self.lock:
            if k not in self.items:
                self.misses += 1
                return None
            self.items.move_to_end(k)
            self.hits += 1
            return self.items[k][0]

    def put(self, k: str, inversion: Any) -> None:
        size = nbytes(inversion)
        with self.lock:
            if k in self.items:
                self.bytes -= self.items.pop(k)[1]
            if size > self.max_bytes:
                return
            self.items[k] = (inversion, size)
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, (_, old) = self.items.popitem(last=False)
                self.bytes -= old

    def info(self) -> dict[str, int]:
        with self.lock:
            return {"entries": len(self.items), "bytes": self.bytes, "max_bytes": self.max_bytes,
                    "hits": self.hits, "misses": self.misses}
