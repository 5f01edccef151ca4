"""An `Inversion` on disk: one safetensors file, written atomically, read back onto the device.

In: an `Inversion` and a path (`save`); a path, the loaded `Models` and the edit's `Settings`
(`load`). Out: the file; an `Inversion` whose store, signature and cached-features flag are the
saved ones and whose keyframe plan and schedule are rebuilt from the settings (both are pure
functions of them); the caller compares the signature with its own before using it.

The tensors are named `t0, t1, …`; the metadata holds the format tag, the signature, the hook
layout the features were captured with (`HOOK_LAYOUT`, also in every signature: a file of
another layout is refused, as one of another format) and the store's layout (its keys and the
nesting of tuples and dicts around each tensor) as JSON.
The writer is our own because `safetensors.torch.save_file` first turns every tensor into
a bytes object, doubling host memory for a cache that is tens of GiB at SD scale; this one
streams tensor by tensor in the same format (read back with `safetensors.safe_open`).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from engine.attention import CONV_LAYER, INJECTION_PREFIXES
from engine.invert import Inversion
from engine.io.write import write_atomic
from engine.keyframes import plan_keyframes
from engine.schedule import Schedule
from engine.settings import Settings
from engine.store import TensorStore, leaves

FORMAT = "ipfacediff-inversion/3"  # /2: keyframe q/k recomputed, compact indices; /3: the hook layout kept
# Where the hooks capture and inject (engine.attention): in every inversion's signature and file,
# so features cached with other layers are a cache miss, never a missing layer mid-edit.
HOOK_LAYOUT = (INJECTION_PREFIXES, CONV_LAYER)
_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64",
           torch.int32: "I32", torch.int16: "I16", torch.uint8: "U8", torch.bool: "BOOL", torch.float64: "F64"}


def _layout(value: Any, tensors: list[torch.Tensor]) -> Any:
    """JSON description of `value`, appending its tensors to `tensors` in order."""
    if isinstance(value, torch.Tensor):
        tensors.append(value)
        name = f"t{len(tensors) - 1}"
        # keep the memory layout (the VAE's latents are channels-last): kernels round differently on another
        return {"t": name} if value.is_contiguous() else {"strided": [name, list(value.stride())]}
    if isinstance(value, tuple):
        return {"tuple": [_layout(v, tensors) for v in value]}
    if isinstance(value, list):
        return {"list": [_layout(v, tensors) for v in value]}
    if isinstance(value, dict):
        return {"dict": [[_plain(k), _layout(v, tensors)] for k, v in value.items()]}
    return {"value": value}


def _rebuild(layout: dict, get) -> Any:
    (kind, body), = layout.items()
    if kind == "t":
        return get(body).clone()  # own, aligned memory rather than a view of the file mapping
    if kind == "strided":
        t = get(body[0])
        return torch.empty_strided(t.shape, body[1], dtype=t.dtype).copy_(t)
    if kind == "tuple":
        return tuple(_rebuild(v, get) for v in body)
    if kind == "list":
        return [_rebuild(v, get) for v in body]
    if kind == "dict":
        return {_tuples(k): _rebuild(v, get) for k, v in body}
    return body


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def save(inv: Inversion, path: Path) -> int:
    """Write `inv` to `path` (via a temporary file in the same folder); returns the bytes written."""
    tensors: list = []  # (dtype, shape) of each tensor: items are read once for the header, once to write
    items = []
    for key in inv.store.keys():
        items.append([_plain(key), _layout(inv.store.host(key), tensors)])
        tensors[:] = [(t.dtype, tuple(t.shape)) if isinstance(t, torch.Tensor) else t for t in tensors]
    header: dict[str, Any] = {"__metadata__": {
        "format": FORMAT, "frames": str(inv.plan.n_frames), "cached": json.dumps(inv.cached),
        "signature": json.dumps(_plain(inv.signature)), "items": json.dumps(items),
        "hooks": json.dumps(_plain(HOOK_LAYOUT))}}
    offset = 0
    for i, (dtype, shape) in enumerate(tensors):
        size = torch.Size(shape).numel() * dtype.itemsize
        header[f"t{i}"] = {"dtype": _DTYPES[dtype], "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # the format aligns the data to 8 bytes

    def chunks():
        yield struct.pack("<Q", len(head))
        yield head
        for key in inv.store.keys():
            for t in leaves(inv.store.host(key)):
                yield memoryview(t.contiguous().view(-1).view(torch.uint8).numpy())

    return write_atomic(path, chunks())


def load(path: Path, models: Any, settings: Settings, spill: str | Path | None = None) -> Inversion:
    """Read `path` into a new `TensorStore` on the models' device (placement by `settings.offload_cache`
    and `settings.cache_host_bytes`, spilling to a file in `spill`)."""
    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path.name} is not an {FORMAT} file")
        if _tuples(json.loads(meta["hooks"])) != HOOK_LAYOUT:
            raise ValueError(f"{path.name} holds features of other injection layers")
        signature = _tuples(json.loads(meta["signature"]))
        store = TensorStore(models.device, settings.offload_cache, settings.cache_host_bytes, spill)
        for key, layout in json.loads(meta["items"]):
            store.put(_tuples(key), _rebuild(layout, f.get_tensor))
    plan = plan_keyframes(int(meta["frames"]), settings)
    schedule = Schedule.build(models.scheduler_config, settings, models.device)
    return Inversion(store, plan, schedule, json.loads(meta["cached"]), signature)
