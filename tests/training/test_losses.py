"""The objectives' algebra: x0 from the UNet output, DDIM inversion, Eq. 5 and Eq. 6 terms."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.errors import UserError
from engine.presets import SD_SCHEDULER
from engine.training.embedders import TinyFaceEmbedder
from engine.training.losses import Diffusion, direction_loss, identity_loss


def _scheduler(prediction_type: str):
    from diffusers import DDIMScheduler

    return DDIMScheduler(**{**SD_SCHEDULER, "prediction_type": prediction_type})


def _diffusion(prediction_type: str) -> Diffusion:
    from diffusers.configuration_utils import FrozenDict

    vae = type("Vae", (), {"config": FrozenDict(scaling_factor=0.18215)})()
    return Diffusion.of(_scheduler(prediction_type).config, vae, "cpu")


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction", "sample"])
def test_x0_and_noise_of_the_true_output_are_the_clean_latent_and_the_noise(kind):
    """The true output is built by an independent diffusers scheduler's own formulas."""
    d, sched = _diffusion(kind), _scheduler(kind)
    z0, noise = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8)
    t = torch.tensor([0, 500, 999])
    x_t = sched.add_noise(z0, noise, t)
    out = {"epsilon": noise, "v_prediction": sched.get_velocity(z0, noise, t), "sample": z0}[kind]
    x0, eps = d.split(out, x_t, t)
    assert torch.allclose(x0, z0, atol=2e-3) and torch.allclose(d.x0(out, x_t, t), x0)
    assert torch.allclose(eps, noise, atol=1e-3)


def test_the_v_prediction_target_and_the_noising_are_the_schedulers_own():
    d, sched = _diffusion("v_prediction"), _scheduler("v_prediction")
    z0, noise, t = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8), torch.tensor([10, 700])
    assert torch.equal(d.target(z0, noise, t), sched.get_velocity(z0, noise, t))
    assert torch.equal(d.noised(z0, noise, t), sched.add_noise(z0, noise, t))
    assert torch.equal(d.alphas_cumprod, sched.alphas_cumprod)


def test_an_unknown_prediction_type_is_a_one_sentence_user_error():
    with pytest.raises(UserError, match="predicts 'flow_prediction', which training does not support") as err:
        _diffusion("flow_prediction")
    assert str(err.value).count(". ") == 0 and "\n" not in str(err.value)


def test_ddim_inversion_with_zero_noise_prediction_is_a_rescaling():
    """ε ≡ 0: every DDIM step only rescales, so x_t = sqrt(ᾱ_t) z0 exactly."""
    d = _diffusion("epsilon")
    zero = lambda x, t, encoder_hidden_states: type("O", (), {"sample": torch.zeros_like(x)})()  # noqa: E731
    z0, t = torch.randn(2, 4, 8, 8), torch.tensor([300, 800])
    x = d.invert(zero, z0, t, None, steps=4)
    assert torch.allclose(x, d.alphas_cumprod[t].sqrt().view(-1, 1, 1, 1) * z0, atol=1e-5)


def test_identity_loss_is_zero_for_a_perfect_reconstruction_and_has_gradient():
    emb = TinyFaceEmbedder()
    y0 = torch.rand(2, 3, 64, 64) * 2 - 1
    same = identity_loss(y0.clone(), y0, emb)
    assert same["loss"].item() == pytest.approx(0.0, abs=1e-5)
    recon = (y0 + 0.3 * torch.randn_like(y0)).requires_grad_()
    out = identity_loss(recon, y0, emb, w_l1=1.0, w_id=1.0)
    assert out["l1"].item() > 0.1 and 0 <= out["id"].item() <= 2
    out["loss"].backward()
    assert recon.grad.abs().sum() > 0


def test_direction_loss_rewards_moving_along_the_text_direction():
    f0 = F.normalize(torch.randn(4, 16), dim=-1)
    t_ref = F.normalize(torch.randn(4, 16), dim=-1)
    t_tar = F.normalize(t_ref + torch.randn(4, 16), dim=-1)
    along = F.normalize(f0 + 0.3 * (t_tar - t_ref), dim=-1)
    against = F.normalize(f0 - 0.3 * (t_tar - t_ref), dim=-1)
    good, bad = direction_loss(along, f0, f0, t_tar, t_ref), direction_loss(against, f0, f0, t_tar, t_ref)
    assert good["dir"] < 0.2 and bad["dir"] > 1.8
    assert good["loss"].item() == pytest.approx(0.3 * good["sim"].item() + 0.7 * good["dir"].item(), rel=1e-5)
