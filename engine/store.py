"""Where the inverted trajectory and cached ε1 features live.

In: tensors keyed by (step, name) and a placement policy. Out: the same tensors back on
the compute device. Tensors stay on the device while the store's budget allows (a quarter
of free device memory under `auto`) and otherwise go to pinned host memory, from which
they are streamed back per step with non-blocking copies; nothing is re-read from disk.
"""

from __future__ import annotations

from typing import Any

import torch


def _tensors(value: Any):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _tensors(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)


def _map(value: Any, fn):
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_map(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: _map(v, fn) for k, v in value.items()}
    return value


def device_budget(device: torch.device, policy: str) -> int:
    """Bytes the store may keep on `device` before spilling to host memory."""
    if policy == "host" and device.type != "cpu":
        return 0
    if policy == "device" or device.type == "cpu":
        return 1 << 62
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free // 4
    return 1 << 30


class TensorStore:
    """A keyed tensor store with a device budget and pinned-host spill-over."""

    def __init__(self, device: torch.device, policy: str = "auto"):
        self.device = device
        self.budget = device_budget(device, policy)
        self.device_bytes = 0
        self.host_bytes = 0
        self._items: dict[Any, Any] = {}

    def put(self, key: Any, value: Any) -> None:
        size = sum(t.numel() * t.element_size() for t in _tensors(value))
        if self.device_bytes + size <= self.budget:
            self.device_bytes += size
            stored = _map(value, lambda t: t.detach().to(self.device))
        else:
            self.host_bytes += size
            pin = self.device.type == "cuda"
            stored = _map(value, lambda t: t.detach().to("cpu").pin_memory() if pin else t.detach().to("cpu"))
        self._items[key] = stored

    def get(self, key: Any, default: Any = None) -> Any:
        if key not in self._items:
            return default
        return _map(self._items[key], lambda t: t.to(self.device, non_blocking=True))

    def items(self):
        """(key, value) pairs as stored (device or host tensors), for serialisation."""
        return self._items.items()

    def __contains__(self, key: Any) -> bool:
        return key in self._items

    @property
    def nbytes(self) -> int:
        return self.device_bytes + self.host_bytes
