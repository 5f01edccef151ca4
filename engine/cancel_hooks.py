"""Cancel inside a UNet call: a cancel lands within one attention layer, not one denoising step.

In: a UNet (any torch module holding diffusers `Attention` modules) and a cancel check that
raises (`Meter.check_cancel` raises `Cancelled`). Out: `CancelHooks`, an apply/remove pair
of forward pre-hooks, one on every attention module, that run the check before the layer;
the UNet is restored on exit, errors (the cancel itself) too. One large UNet call at a high
resolution takes minutes; its attention layers take a fraction of a second each.
"""

from __future__ import annotations

from typing import Callable

from diffusers.models.attention_processor import Attention
from torch import nn


class CancelHooks:
    def __init__(self, unet: nn.Module, check: Callable[[], None]):
        self.unet, self.check = unet, check
        self._handles: list = []

    def apply(self) -> "CancelHooks":
        self._handles = [m.register_forward_pre_hook(self._before) for m in self.unet.modules()
                         if isinstance(m, Attention)]
        return self

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> "CancelHooks":
        return self.apply()

    def __exit__(self, *exc) -> None:
        self.remove()

    def _before(self, module: nn.Module, args: tuple) -> None:
        self.check()
