"""Where the inverted trajectory and cached ε1 features live.

In: tensors (or nested tuples/lists/dicts of them) keyed by (name, step), whole (`put`) or
row by row (`put_rows`), a placement policy and a host-memory budget. Out: the same values
back on the compute device (`get`, optionally only some rows). Three tiers, filled in order:
the device while the policy allows (a quarter of free CUDA memory under `auto`), host
memory (pinned for CUDA) up to `host_bytes`, then a memory-mapped spill file in `folder`
(unlinked at once, so it never outlives the process), read back one item at a time.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

_ALIGN = 64


def leaves(value: Any):
    """The tensors of a nested value, depth first in order."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from leaves(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from leaves(v)


def _map(value: Any, fn, *others: Any):
    """`value` with every tensor leaf t replaced by fn(t, *matching leaves of `others`)."""
    if isinstance(value, (torch.Tensor, _Spilled)):
        return fn(value, *others)
    if isinstance(value, (tuple, list)):
        return type(value)(_map(v, fn, *(o[i] for o in others)) for i, v in enumerate(value))
    if isinstance(value, dict):
        return {k: _map(v, fn, *(o[k] for o in others)) for k, v in value.items()}
    return value


def nbytes(value: Any) -> int:
    return sum(t.numel() * t.element_size() for t in leaves(value))


def device_budget(device: torch.device, policy: str) -> int:
    """Bytes the store may keep in device memory (0 on the CPU: there the host tier is all)."""
    if device.type == "cpu" or policy == "host":
        return 0
    if policy == "device":
        return 1 << 62
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free // 4
    return 1 << 30


def host_budget(wish: int | None) -> int:
    """`wish`, or half the host memory available now."""
    if wish is not None:
        return wish
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["MemAvailable"].split()[0]) * 1024 // 2
    except (OSError, KeyError, ValueError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2


@dataclass(frozen=True)
class _Spilled:
    """One tensor in the spill file: C-contiguous bytes from `offset`, rebuilt with `stride`."""

    offset: int
    dtype: torch.dtype
    shape: tuple[int, ...]
    stride: tuple[int, ...]


class _SpillFile:
    """An unlinked temporary file; tensors are appended (or written row by row) and read back
    through a memory map of the file."""

    def __init__(self, folder: str | Path | None):
        fd, path = tempfile.mkstemp(prefix="ipfacediff-cache-", suffix=".bin", dir=folder)
        os.unlink(path)
        self._file = os.fdopen(fd, "r+b", buffering=0)
        self.size = 0
        self._map: mmap.mmap | None = None

    def allocate(self, dtype: torch.dtype, shape: tuple[int, ...], stride: tuple[int, ...]) -> _Spilled:
        size = torch.Size(shape).numel() * dtype.itemsize
        offset = self.size
        self.size += -(-size // _ALIGN) * _ALIGN
        os.ftruncate(self._file.fileno(), self.size)
        return _Spilled(offset, dtype, tuple(shape), tuple(stride))

    def write(self, spot: _Spilled, t: torch.Tensor, first_row: int = 0) -> None:
        data = t.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy()
        row = torch.Size(spot.shape[1:]).numel() * spot.dtype.itemsize
        os.pwrite(self._file.fileno(), memoryview(data), spot.offset + first_row * row)

    def view(self, spot: _Spilled) -> torch.Tensor:
        """The stored tensor as a (C-contiguous) view of the mapping; copy before keeping it."""
        if self._map is None or len(self._map) < self.size:
            self._map = mmap.mmap(self._file.fileno(), self.size, access=mmap.ACCESS_COPY)
        count = torch.Size(spot.shape).numel()
        return torch.frombuffer(self._map, dtype=spot.dtype, count=count, offset=spot.offset).view(spot.shape)


class TensorStore:
    """A keyed tensor store: device, then (pinned) host memory within `host_bytes`, then a
    memory-mapped spill file in `folder` (default: the system temp folder)."""

    def __init__(self, device: torch.device, policy: str = "auto", host_bytes: int | None = None,
                 folder: str | Path | None = None):
        self.device = device
        self.budget = device_budget(device, policy)
        self.host_budget = host_budget(host_bytes)
        self.folder = folder
        self.device_bytes = self.host_bytes = self.spill_bytes = 0
        self._items: dict[Any, Any] = {}
        self._spill: _SpillFile | None = None

    def _place(self, size: int) -> str:
        if self.device_bytes + size <= self.budget:
            self.device_bytes += size
            return "device"
        if self.host_bytes + size <= self.host_budget:
            self.host_bytes += size
            return "host"
        self.spill_bytes += size
        if self._spill is None:
            self._spill = _SpillFile(self.folder)
        return "spill"

    def _empty(self, tier: str, dtype: torch.dtype, shape: tuple[int, ...], stride: tuple[int, ...]):
        if tier == "spill":
            return self._spill.allocate(dtype, shape, stride)
        where = self.device if tier == "device" else torch.device("cpu")
        pin = tier == "host" and self.device.type == "cuda"
        return torch.empty_strided(shape, stride, dtype=dtype, device=where, pin_memory=pin)

    def put(self, key: Any, value: Any) -> None:
        """Store `value` whole, memory layout (strides) kept."""
        tier = self._place(nbytes(value))

        def store(t: torch.Tensor):
            spot = self._empty(tier, t.dtype, tuple(t.shape), tuple(t.stride()))
            if tier == "spill":
                self._spill.write(spot, t)
            else:
                spot.copy_(t.detach())
            return spot

        self._items[key] = _map(value, store)

    def put_rows(self, key: Any, total: int, rows: list[int], value: Any) -> None:
        """Write `value` (leaves [len(rows), ...]) into rows `rows` of item `key`, whose leaves
        have `total` rows; the item is made (contiguous) on its first write."""
        if key not in self._items:
            size = sum(total * t[0].numel() * t.element_size() for t in leaves(value))
            tier = self._place(size)

            def empty(t: torch.Tensor):
                shape = (total, *t.shape[1:])
                return self._empty(tier, t.dtype, shape, torch.empty(shape, device="meta").stride())

            self._items[key] = _map(value, empty)
        contiguous = rows == list(range(rows[0], rows[0] + len(rows)))

        def write(spot, t: torch.Tensor) -> None:
            if isinstance(spot, torch.Tensor):
                spot[rows] = t.to(spot.device)
            elif contiguous:
                self._spill.write(spot, t, rows[0])
            else:
                for i, r in enumerate(rows):
                    self._spill.write(spot, t[i:i + 1], r)

        _map(self._items[key], write, value)

    def _read(self, spot, rows, device: torch.device) -> torch.Tensor:
        if isinstance(spot, torch.Tensor):
            t = spot if rows is None else spot[rows]
            return t.to(device, non_blocking=True)
        flat = self._spill.view(spot)
        if rows is not None:
            return flat[rows].to(device)
        out = torch.empty_strided(spot.shape, spot.stride, dtype=spot.dtype, device=device)
        return out.copy_(flat)

    def get(self, key: Any, default: Any = None, rows: list[int] | None = None) -> Any:
        """The item on the compute device; `rows`: only these rows of every leaf."""
        if key not in self._items:
            return default
        return _map(self._items[key], lambda spot: self._read(spot, rows, self.device))

    def host(self, key: Any) -> Any:
        """The item in host memory (for serialisation; spilled parts are read from the file)."""
        return _map(self._items[key], lambda spot: self._read(spot, None, torch.device("cpu")))

    def keys(self) -> list[Any]:
        return list(self._items)

    def __contains__(self, key: Any) -> bool:
        return key in self._items

    @property
    def nbytes(self) -> int:
        return self.device_bytes + self.host_bytes + self.spill_bytes
