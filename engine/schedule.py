"""DDIM schedule of one edit, built from the model's own scheduler config.

In: the scheduler config of the loaded model and `Settings`. Out: a `Schedule` with the
inverse (ascending) and forward (descending) timesteps, the two diffusers schedulers that
step them (`DDIMInverseScheduler` / `DDIMScheduler.from_config`, so epsilon and
v-prediction both follow the model), and which edit steps inject ε1's features.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import DDIMInverseScheduler, DDIMScheduler

from engine.settings import Settings


@dataclass
class Schedule:
    forward: DDIMScheduler
    inverse: DDIMInverseScheduler
    steps: int
    attn_steps: int
    """Edit steps 0..attn_steps-1 inject ε1's attn1 queries/keys."""
    conv_steps: int
    """Edit steps 0..conv_steps-1 inject ε1's conv feature."""

    @classmethod
    def build(cls, scheduler_config, settings: Settings, device: torch.device) -> "Schedule":
        forward = DDIMScheduler.from_config(scheduler_config)
        inverse = DDIMInverseScheduler.from_config(scheduler_config)
        forward.set_timesteps(settings.steps, device=device)
        inverse.set_timesteps(settings.steps, device=device)
        return cls(forward, inverse, settings.steps, cls.attn_steps_of(settings),
                   round(settings.conv_injection * settings.steps))

    @staticmethod
    def attn_steps_of(settings: Settings) -> int:
        """Edit steps that inject ε1's attn1 queries/keys."""
        return round(settings.attn_injection * settings.steps)

    def edit_timesteps(self) -> list[tuple[int, torch.Tensor]]:
        """(edit step i, timestep) from noisiest to cleanest."""
        return list(enumerate(self.forward.timesteps))

    def inversion_step_of(self, edit_step: int) -> int:
        """The inversion step evaluated at the same timestep as edit step `edit_step`."""
        return self.steps - 1 - edit_step

    def edit_step_of(self, inversion_step: int) -> int:
        """The edit step evaluated at the same timestep as inversion step `inversion_step`."""
        return self.steps - 1 - inversion_step

    def injects_attn(self, edit_step: int) -> bool:
        return edit_step < self.attn_steps

    def injects_conv(self, edit_step: int) -> bool:
        return edit_step < self.conv_steps
