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

import torch
import torch.nn.functional as F


@dataclass
class Diffusion:
    """Noise schedule and VAE scaling of the model being tuned."""

    alphas_cumprod: torch.Tensor  # [T] on the device
    prediction_type: str
    scaling_factor: float
    shift_factor: float = 0.0

    @classmethod
    def of(cls, scheduler_config, vae, device) -> "Diffusion":
        from diffusers import DDPMScheduler

        sched = DDPMScheduler.from_config(scheduler_config)
        return cls(sched.alphas_cumprod.to(device, torch.float32), sched.config.prediction_type,
                   vae.config.scaling_factor, vae.config.get("shift_factor") or 0.0)

    def _a(self, t: torch.Tensor) -> torch.Tensor:
        return self.alphas_cumprod[t].view(-1, 1, 1, 1)

    def noised(self, z0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = self._a(t)
        return a.sqrt() * z0 + (1 - a).sqrt() * noise

    def x0(self, out: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Clean latent predicted from the UNet output at timestep t."""
        a = self._a(t).to(out.dtype)
        if self.prediction_type == "epsilon":
            return (x_t - (1 - a).sqrt() * out) / a.sqrt()
        if self.prediction_type == "v_prediction":
            return a.sqrt() * x_t - (1 - a).sqrt() * out
        return out  # "sample"

    def eps(self, out: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = self._a(t).to(out.dtype)
        if self.prediction_type == "epsilon":
            return out
        if self.prediction_type == "v_prediction":
            return a.sqrt() * out + (1 - a).sqrt() * x_t
        return (x_t - a.sqrt() * out) / (1 - a).sqrt()

    @torch.no_grad()
    def invert(self, unet, z0: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, steps: int) -> torch.Tensor:
        """Deterministic DDIM inversion of z0 up to each sample's t in `steps` steps (the
        clean latent counts as ᾱ = 1, as in diffusers' DDIMInverseScheduler)."""
        x, prev = z0, torch.zeros_like(t)
        for k in range(1, steps + 1):
            nxt = torch.div(t * k, steps, rounding_mode="floor")
            e = self.eps(unet(x, prev, encoder_hidden_states=cond).sample, x, prev)
            a_prev = torch.ones_like(self._a(prev)) if k == 1 else self._a(prev)
            x0 = (x - (1 - a_prev).sqrt().to(x.dtype) * e) / a_prev.sqrt().to(x.dtype)
            a = self._a(nxt).to(x.dtype)
            x = a.sqrt() * x0 + (1 - a).sqrt() * e
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
