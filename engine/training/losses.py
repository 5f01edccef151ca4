"""The two training objectives, one UNet pass with gradient per sample.

ε1 (Eq. 5): y0's latent is noised to a sampled timestep t (or DDIM-inverted to t in a few
steps without gradient), ε1 predicts x0 in one pass, the frozen VAE decodes it (gradient
flows through the decoder) into the reconstruction ŷ, and
    L_id = w_l1 ‖ŷ − y0‖₁ + w_id (1 − cos(f_arc(ŷ), f_arc(y0))).
ε2 (Eq. 6): the same noised latent, ε2's one-pass x0 prediction under the target prompt,
decoded, is y_gen; y_ref is the prediction under the reference prompt without gradient
(so the blur of a one-step prediction cancels in the direction; `ref="image"` uses y0):
    L_dir = λ1 ‖f_I(y_gen) − f_I(y0)‖² + λ2 (1 − cos(f_I(y_gen) − f_I(y_ref), f_T(p_tar) − f_T(p_ref))).
f_I, f_T are L2-normalised CLIP features; the squared distance sums over feature dims.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from engine.errors import UserError

# What the UNet is trained to output for x_t = add_noise(z0, noise, t), per prediction type,
# by the diffusers scheduler's own formulas.
TARGETS = {
    "epsilon": lambda scheduler, z0, noise, t: noise,
    "v_prediction": lambda scheduler, z0, noise, t: scheduler.get_velocity(z0, noise, t),
    "sample": lambda scheduler, z0, noise, t: z0,
}


@dataclass
class Diffusion:
    """Noise schedule (a diffusers `DDPMScheduler`) and VAE scaling of the model being tuned."""

    scheduler: Any
    scaling_factor: float
    shift_factor: float = 0.0

    def __post_init__(self) -> None:
        if self.prediction_type not in TARGETS:
            raise UserError(f"the model's scheduler predicts '{self.prediction_type}', which training does not "
                            f"support (only {', '.join(TARGETS)}).")

    @classmethod
    def of(cls, scheduler_config, vae, device) -> "Diffusion":
        from diffusers import DDPMScheduler

        scheduler = DDPMScheduler.from_config(scheduler_config)
        scheduler.alphas_cumprod = scheduler.alphas_cumprod.to(device)
        return cls(scheduler, vae.config.scaling_factor, vae.config.get("shift_factor") or 0.0)

    @property
    def prediction_type(self) -> str:
        return self.scheduler.config.prediction_type

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        """ᾱ_t for every training timestep, [T]."""
        return self.scheduler.alphas_cumprod

    def noised(self, z0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.scheduler.add_noise(z0, noise, t)

    def target(self, z0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The UNet's training target for x_t = noised(z0, noise, t)."""
        return TARGETS[self.prediction_type](self.scheduler, z0, noise, t)

    def split(self, out: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(clean latent, noise) from the UNet output at timestep t. x_t and the output are both
        linear in (z0, noise), per sample; the coefficients are read off the scheduler's own
        formulas (`noised`, `target`) applied to unit latents, and the 2×2 system is solved."""
        one = torch.ones(t.shape[0], 1, 1, 1, device=x_t.device)
        zero = torch.zeros_like(one)
        p, q = self.noised(one, zero, t), self.noised(zero, one, t)
        r, s = self.target(one, zero, t), self.target(zero, one, t)
        det = p * s - q * r
        p, q, r, s, det = (c.to(out.dtype) for c in (p, q, r, s, det))
        return (s * x_t - q * out) / det, (p * out - r * x_t) / det

    def x0(self, out: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Clean latent predicted from the UNet output at timestep t."""
        return self.split(out, x_t, t)[0]

    @torch.no_grad()
    def invert(self, unet, z0: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, steps: int) -> torch.Tensor:
        """Deterministic DDIM inversion of z0 up to each sample's t in `steps` steps (the
        clean latent counts as ᾱ = 1, as in diffusers' DDIMInverseScheduler)."""
        x, prev = z0, torch.zeros_like(t)
        for k in range(1, steps + 1):
            nxt = torch.div(t * k, steps, rounding_mode="floor")
            x0, eps = self.split(unet(x, prev, encoder_hidden_states=cond).sample, x, prev)
            x = self.noised(x if k == 1 else x0, eps, nxt)
            prev = nxt
        return x

    def encode(self, vae, pixels: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            z = vae.encode(pixels.to(vae.dtype)).latent_dist.mode()
        return (z - self.shift_factor) * self.scaling_factor

    def decode(self, vae, latents: torch.Tensor) -> torch.Tensor:
        """Differentiable decode to images in (about) [-1, 1]."""
        return vae.decode((latents / self.scaling_factor + self.shift_factor).to(vae.dtype)).sample


def identity_loss(recon: torch.Tensor, y0: torch.Tensor, embedder, w_l1: float = 1.0,
                  w_id: float = 1.0) -> dict[str, torch.Tensor]:
    l1 = (recon.float() - y0.float()).abs().mean()
    with torch.no_grad():
        e0 = embedder(y0)
    d_id = (1 - (embedder(recon) * e0).sum(-1)).mean()
    return {"loss": w_l1 * l1 + w_id * d_id, "l1": l1, "id": d_id}


def direction_loss(f_gen: torch.Tensor, f0: torch.Tensor, f_ref: torch.Tensor, t_tar: torch.Tensor,
                   t_ref: torch.Tensor, lambda1: float = 0.3, lambda2: float = 0.7) -> dict[str, torch.Tensor]:
    sim = ((f_gen - f0) ** 2).sum(-1).mean()
    cos = F.cosine_similarity(f_gen - f_ref, t_tar - t_ref, dim=-1, eps=1e-8)
    d_dir = (1 - cos).mean()
    return {"loss": lambda1 * sim + lambda2 * d_dir, "sim": sim, "dir": d_dir}
