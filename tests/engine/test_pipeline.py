"""End-to-end invariants of the editing pipeline on tiny random-weight models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.attention import FeatureHooks, SelfAttentionProcessor
from engine.edit import edit as edit_latents
from engine.editor import Editor
from engine.errors import Cancelled, UserError
from engine.invert import encode, invert
from engine.keyframes import plan_keyframes
from engine.meter import Meter
from engine.schedule import Schedule
from engine.settings import Settings

FAST = Settings(face_mode="full", steps=6)  # the clips are noise: no face, so edit whole frames (auto passes them through)


def _latents(editor, frames):
    pixels = torch.from_numpy(np.stack(frames).astype(np.float32) / 255).permute(0, 3, 1, 2)
    return encode(editor.models, pixels, Meter(editor.models.device, 1), 8)


def _invert_and_edit(editor, latents, settings, prompt="add glasses"):
    m = editor.models
    plan = plan_keyframes(latents.shape[0], settings)
    schedule = Schedule.build(m.scheduler_config, settings, m.device)
    meter = Meter(m.device, 1)
    with FeatureHooks(m.identity.unet) as hooks:
        inv = invert(m, latents, plan, schedule, settings, meter, hooks)
        return inv, edit_latents(m, inv, prompt, settings, meter, hooks), meter


@pytest.mark.parametrize("mode", ["cached", "recompute"])
def test_zero_noise_model_round_trips_exactly(mode, clip16):
    editor = Editor("tiny")
    conv_out = editor.models.identity.unet.conv_out
    torch.nn.init.zeros_(conv_out.weight)
    torch.nn.init.zeros_(conv_out.bias)
    latents = _latents(editor, clip16)
    settings = Settings(steps=10, source_features=mode, attn_injection=1.0, conv_injection=1.0)
    inv, edited, _ = _invert_and_edit(editor, latents, settings)
    assert not torch.allclose(inv.latents(10), latents)  # inversion did move the latents
    torch.testing.assert_close(edited, latents, rtol=1e-5, atol=1e-5)


def test_unet_evaluation_budget(tiny_editor, clip16):
    cached = tiny_editor.edit(clip16, "add glasses", Settings(face_mode="full", steps=5)).stats["unet_evals"]
    assert cached["inversion"] == 16 * 5
    assert cached["keyframes"] == 2 * 3 * 5 and cached["propagation"] == 2 * 13 * 5
    # the 3 keyframes' q/k are recomputed by ε1 in the round(0.5 · 5) = 2 attention-injection steps
    assert cached["keyframe_source"] == 3 * 2
    assert cached["per_frame"] == 3 * 5 + 3 * 2 / 16  # = 153.25 at 50 steps, 300 frames
    recompute = tiny_editor.edit(clip16, "add glasses", Settings(face_mode="full", steps=5, source_features="recompute"))
    assert recompute.stats["unet_evals"]["per_frame"] == 4 * 5
    assert recompute.stats["unet_evals"]["source"] == 16 * 5


def test_cached_and_recompute_modes_agree_closely(tiny_editor, clip16):
    a = tiny_editor.edit(clip16, "blonde hair", FAST).frames
    b = tiny_editor.edit(clip16, "blonde hair", FAST.replace(source_features="recompute")).frames
    diff = np.abs(np.stack(a).astype(int) - np.stack(b).astype(int))
    # cached features come from the inversion pass one step earlier on the trajectory
    assert diff.mean() < 20


def test_identical_input_frames_give_identical_outputs(tiny_editor, clip16):
    frames = [clip16[3]] * 12
    out = tiny_editor.edit(frames, "make him smile", FAST).frames
    for f in out[1:]:
        assert np.abs(f.astype(int) - out[0].astype(int)).max() <= 1


def test_same_seed_same_output(tiny_editor, clip16):
    s = FAST.replace(keyframe_strategy="random", seed=3)
    a = tiny_editor.edit(clip16, "add glasses", s)
    b = tiny_editor.edit(clip16, "add glasses", s)
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames))
    c = tiny_editor.edit(clip16, "add glasses", s.replace(seed=4))
    assert c.stats["keyframes"] != a.stats["keyframes"]


def test_prompt_changes_the_output(tiny_editor, clip16):
    a = tiny_editor.edit(clip16, "add glasses", FAST).frames
    b = tiny_editor.edit(clip16, "blonde hair", FAST).frames
    assert not np.array_equal(np.stack(a), np.stack(b))


@pytest.mark.parametrize("mode", ["cached", "recompute"])
def test_result_does_not_depend_on_batch_size(tiny_editor, clip16, mode):
    frames = [f.astype(np.float32) / 255 for f in clip16]
    s = FAST.replace(source_features=mode)
    a = np.stack(tiny_editor.edit(frames, "add glasses", s.replace(batch_size=2, vae_batch_size=3)).frames)
    b = np.stack(tiny_editor.edit(frames, "add glasses", s.replace(batch_size=16, vae_batch_size=16)).frames)
    per_frame = np.abs(a - b).reshape(len(frames), -1).max(axis=1)
    # Float noise of ~1e-6 can flip a near-tie in a nearest-neighbour argmax, which moves a
    # token of one frame by a little; everything else agrees to float precision.
    assert (per_frame < 1e-4).sum() >= len(frames) - 1
    assert per_frame.max() < 2e-2


def test_frame_size_and_dtype_are_kept(tiny_editor):
    rng = np.random.default_rng(0)
    odd = [rng.integers(0, 65535, (50, 70, 3), dtype=np.uint16) for _ in range(3)]
    out = tiny_editor.edit(odd, "add glasses", Settings(face_mode="full", steps=2)).frames
    assert out[0].shape == (50, 70, 3) and out[0].dtype == np.uint16
    floats = [rng.random((64, 64, 3), dtype=np.float32) for _ in range(2)]
    out = tiny_editor.edit(floats, "add glasses", Settings(face_mode="full", steps=2)).frames
    assert out[0].dtype == np.float32 and 0 <= out[0].min() and out[0].max() <= 1


def test_no_engine_hooks_remain_after_edits(tiny_editor, clip16):
    unet = tiny_editor.models.identity.unet
    before = dict(unet.attn_processors)
    tiny_editor.edit(clip16[:4], "add glasses", Settings(face_mode="full", steps=2))
    with pytest.raises(Cancelled):
        tiny_editor.edit(clip16[:4], "add glasses", Settings(face_mode="full", steps=2), cancel=lambda: True)
    after = unet.attn_processors
    assert all(after[k] is before[k] for k in before)
    assert not any(isinstance(p, SelfAttentionProcessor) for p in after.values())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in unet.modules())


def test_cancel_takes_effect_within_one_step(tiny_editor, clip16):
    calls = []

    def progress(stage, step, fraction):
        calls.append((stage, step))

    def cancel():
        return len(calls) >= 5

    with pytest.raises(Cancelled):
        tiny_editor.edit(clip16, "add glasses", Settings(face_mode="full", steps=10), progress=progress, cancel=cancel)
    assert len(calls) == 5  # the check after the fifth progress call stops the edit: no sixth call


def test_progress_reaches_one_and_is_monotonic(tiny_editor, clip16):
    seen = []
    tiny_editor.edit(clip16[:5], "add glasses", Settings(face_mode="full", steps=3), progress=lambda *a: seen.append(a))
    fractions = [f for _, _, f in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {s for s, _, _ in seen} == {"invert", "edit", "decode"}


def test_stats_name_the_model_and_random_weights(tiny_editor, clip16):
    stats = tiny_editor.edit(clip16[:3], "add glasses", Settings(face_mode="full", steps=2)).stats
    assert stats["random_weights"] is True and "RANDOM WEIGHTS" in stats["model"]
    assert stats["seconds_in"]["unet"] > 0 and stats["seconds"]["edit"] > 0
    assert stats["cache_bytes_per_frame"] > 0 and stats["peak_memory_bytes"]["host_rss"] > 0


@pytest.mark.parametrize("frames, prompt, match", [
    ([], "x", "no frames"),
    ([np.zeros((64, 64, 3), np.uint8), np.zeros((32, 64, 3), np.uint8)], "x", "same size"),
    ([np.zeros((64, 64, 5), np.uint8)], "x", "no usable frame"),
    ([np.zeros((64, 64, 3), np.uint8)], "   ", "prompt is empty"),
])
def test_bad_input_is_one_clear_error(tiny_editor, frames, prompt, match):
    with pytest.raises(UserError, match=match):
        tiny_editor.edit(frames, prompt, Settings(steps=2))


def test_v_prediction_model_runs_and_inverts_with_v_formulas(clip16):
    editor = Editor("tiny-v")
    m = editor.models
    assert m.scheduler_config.prediction_type == "v_prediction"
    out = editor.edit(clip16[:6], "add glasses", Settings(face_mode="full", steps=4))
    assert len(out.frames) == 6 and np.isfinite(np.stack(out.frames)).all()

    settings = Settings(steps=4, source_features="recompute")  # keeps the whole trajectory
    latents = _latents(editor, clip16[:3])
    inv, _, _ = _invert_and_edit(editor, latents, settings)
    sched = inv.schedule.inverse
    alphas = sched.alphas_cumprod
    emb = m.encode_prompt(settings.source_prompt).expand(3, -1, -1)
    ratio = sched.config.num_train_timesteps // settings.steps
    for j, t in enumerate(sched.timesteps):
        x = latents if j == 0 else inv.latents(j)
        with torch.no_grad():
            v = m.identity.unet(x, t, encoder_hidden_states=emb).sample
        a_now = alphas[t - ratio] if t - ratio >= 0 else alphas[0]  # set_alpha_to_one=False
        a_next = alphas[t]
        x0 = a_now.sqrt() * x - (1 - a_now).sqrt() * v
        eps = a_now.sqrt() * v + (1 - a_now).sqrt() * x
        expected = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
        torch.testing.assert_close(inv.latents(j + 1), expected, rtol=1e-4, atol=1e-5)


def test_inversion_and_edit_timesteps_mirror_each_other(tiny_editor):
    s = Schedule.build(tiny_editor.models.scheduler_config, Settings(steps=10), torch.device("cpu"))
    assert s.inverse.timesteps.tolist() == s.forward.timesteps.flip(0).tolist()
    assert (s.attn_steps, s.conv_steps) == (5, 8)


@pytest.mark.slow
def test_sd21_base_preset_has_real_shapes_and_runs_one_step():
    from engine.presets import build_preset

    parts = build_preset("sd21-base")
    unet = parts["unet"]
    assert 860e6 < sum(p.numel() for p in unet.parameters()) < 870e6
    assert unet.config.cross_attention_dim == 1024 and parts["vae"].config.scaling_factor == 0.18215
    with torch.no_grad():
        out = unet(torch.randn(1, 4, 64, 64), 981, encoder_hidden_states=torch.randn(1, 77, 1024)).sample
    assert out.shape == (1, 4, 64, 64)


def test_reedit_reuses_the_inversion(tiny_editor, clip16):
    s = Settings(face_mode="full", steps=4)
    inv = tiny_editor.invert(clip16, s)
    fresh = tiny_editor.edit(clip16, "blonde hair", s)
    again = tiny_editor.edit(clip16, "blonde hair", s, inversion=inv)
    assert again.stats["inversion_reused"] and "inversion" not in again.stats["unet_evals"]
    assert again.stats["unet_evals"]["per_frame"] == 2 * 4 + 3 * 2 / 16  # + the keyframes' q/k re-run
    assert all(np.array_equal(a, b) for a, b in zip(fresh.frames, again.frames))
    # other batching still reuses it; other steps do not
    tiny_editor.edit(clip16, "add glasses", s.replace(batch_size=3), inversion=inv)
    with pytest.raises(UserError, match="invert again"):
        tiny_editor.edit(clip16, "add glasses", s.replace(steps=5), inversion=inv)


def test_long_clip_uses_windowed_keyframe_attention(tiny_editor):
    rng = np.random.default_rng(5)
    frames = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(60)]
    s = Settings(face_mode="full", steps=2, keyframe_interval=4, keyframe_window=2, keyframe_anchors=1, batch_size=16)
    from engine.keyframes import plan_keyframes as plan

    assert len(plan(60, s).attention_groups) > 1
    out = tiny_editor.edit(frames, "add glasses", s)
    kf = len(out.stats["keyframes"])  # q/k re-run in round(0.5 · 2) = 1 step
    assert len(out.frames) == 60 and out.stats["unet_evals"]["per_frame"] == 3 * 2 + kf / 60


def test_inversion_and_edit_steps_pair_up_at_the_same_timestep(tiny_editor):
    from engine.schedule import Schedule

    schedule = Schedule.build(tiny_editor.models.scheduler_config, Settings(steps=7), torch.device("cpu"))
    for j, t in enumerate(schedule.inverse.timesteps):
        i = schedule.edit_step_of(j)
        assert schedule.inversion_step_of(i) == j
        # DDIM inversion step j reaches the timestep that edit step i starts from
        assert int(schedule.forward.timesteps[i]) == int(t)
