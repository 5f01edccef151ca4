"""Long clips at bounded memory (issue 14): the keyframe pass split by attention group gives the
joint pass's latents, no UNet call holds more than one group or batch, the cache holds only
what is not cheap to redo (in the smallest dtype that leaves the edit unchanged, laid out as
computed to the byte), spills to a file beyond its host budget, and crops default to the
model's own size."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import torch

from engine.attention import FeatureHooks
from engine.edit import edit as edit_latents
from engine.invert import cache_layout, encode, invert
from engine.keyframes import Call, KeyframePlan, plan_keyframes
from engine.meter import Meter
from engine.schedule import Schedule
from engine.settings import Settings
from engine.store import TensorStore

LONG = Settings(steps=3, keyframe_interval=2, keyframe_window=4, keyframe_anchors=1, batch_size=4)


class Recording(Meter):
    """A meter that also notes the frames of every UNet call."""

    def __init__(self, device):
        super().__init__(device, 1)
        self.calls: list[tuple[str, int]] = []

    def unet(self, stage, unet, latents, *args, **kwargs):
        self.calls.append((stage, latents.shape[0]))
        return super().unet(stage, unet, latents, *args, **kwargs)


class JointPlan(KeyframePlan):
    """The same plan with the whole keyframe pass in one UNet call (today's unsplit pass)."""

    def calls(self, batch_size: int) -> list[Call]:
        groups = tuple(range(len(self.attention_groups)))
        joint = Call(groups, tuple(self.keyframes[p] for g in groups for p in self.attention_groups[g][0]))
        return [joint] + [Call((), c.frames) for c in super().calls(batch_size) if not c.groups]


def _clip(n: int, h: int = 64, w: int = 64) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (h, w + n, 3), dtype=np.uint8)
    return [np.ascontiguousarray(base[:, i:i + w]) for i in range(n)]


def _latents(editor, frames):
    pixels = torch.from_numpy(np.stack(frames).astype(np.float32) / 255).permute(0, 3, 1, 2)
    return encode(editor.models, pixels, Meter(editor.models.device, 1), 8)


def _invert(editor, latents, settings, meter=None, folder=None):
    m = editor.models
    schedule = Schedule.build(m.scheduler_config, settings, m.device)
    with FeatureHooks(m.identity.unet) as hooks:
        return invert(m, latents, plan_keyframes(latents.shape[0], settings), schedule, settings,
                      meter or Meter(m.device, 1), hooks, folder)


def _edit(editor, inv, settings, meter=None):
    m = editor.models
    with FeatureHooks(m.identity.unet) as hooks:
        return edit_latents(m, inv, "add glasses", settings, meter or Meter(m.device, 1), hooks)


@pytest.mark.parametrize("mode", ["cached", "recompute"])
def test_split_keyframe_pass_gives_the_joint_passs_latents(tiny_editor, mode):
    settings = LONG.replace(source_features=mode)
    inv = _invert(tiny_editor, _latents(tiny_editor, _clip(20)), settings)
    assert len(inv.plan.attention_groups) >= 3
    joint = dataclasses.replace(inv, plan=JointPlan(**{f.name: getattr(inv.plan, f.name)
                                                       for f in dataclasses.fields(inv.plan)}))
    split_x, joint_x = _edit(tiny_editor, inv, settings), _edit(tiny_editor, joint, settings)
    torch.testing.assert_close(split_x, joint_x, rtol=1e-4, atol=1e-4)


def test_no_unet_call_holds_more_than_a_batch_of_frames(tiny_editor):
    meter = Recording(tiny_editor.models.device)
    inv = _invert(tiny_editor, _latents(tiny_editor, _clip(20)), LONG, meter)
    _edit(tiny_editor, inv, LONG, meter)
    assert len(inv.plan.keyframes) == 11  # 22 frames in one call before the split
    most = {stage: max(n for s, n in meter.calls if s == stage) for stage, _ in meter.calls}
    # the largest keyframe call is a segment: window - 1 keyframes between two spine keyframes
    assert most == {"inversion": 4, "keyframe_source": 3, "keyframes": 2 * 3, "propagation": 2 * 4}


@pytest.mark.parametrize("n, h, w, mode", [(10, 64, 64, "cached"), (7, 192, 128, "cached"),
                                           (5, 64, 128, "recompute")])
def test_cache_size_matches_the_computed_layout_to_the_byte(tiny_editor, n, h, w, mode):
    settings = Settings(steps=4, keyframe_interval=3, attn_injection=0.25, source_features=mode)
    inv = _invert(tiny_editor, _latents(tiny_editor, _clip(n, h, w)), settings)
    s = inv.schedule
    layout = cache_layout(dict(tiny_editor.models.identity.unet.config), (4, h // 8, w // 8), n,
                          len(inv.plan.keyframes), (s.steps, s.attn_steps, s.conv_steps), 4, mode == "cached")
    assert sum(layout.values()) == inv.store.nbytes


def test_cached_tensors_take_the_smallest_dtype_that_leaves_the_edit_unchanged(tiny_editor):
    settings = Settings(steps=3, keyframe_interval=3)
    inv = _invert(tiny_editor, _latents(tiny_editor, _clip(5, 192, 128)), settings)
    nn = inv.store.host(("nn", 0))  # layers of 24×16 = 384 tokens and of ≤ 96
    assert {p.dtype for p, _ in nn.values() if p.shape[1] <= 256} == {torch.uint8}
    assert {p.dtype for p, _ in nn.values() if p.shape[1] > 256} == {torch.int16}
    floats = {inv.store.host(k).dtype for k in inv.store.keys() if k[0] != "nn"}
    assert floats == {torch.float32}  # latents are fp32; the tiny UNet computes in fp32
    reference = _edit(tiny_editor, inv, settings)

    def changed(kinds: tuple[str, ...], fn) -> torch.Tensor:
        store = TensorStore(inv.store.device)
        for key in inv.store.keys():
            value = inv.store.host(key)
            store.put(key, _map(value, fn) if key[0] in kinds else value)
        return _edit(tiny_editor, dataclasses.replace(inv, store=store), settings)

    # wider indices change nothing; a narrower float for the latents or the conv feature does
    assert torch.equal(changed(("nn",), lambda t: t.long()), reference)
    assert not torch.equal(changed(("x", "x_kf"), lambda t: t.bfloat16().float()), reference)
    assert not torch.equal(changed(("conv", "conv_kf"), lambda t: t.bfloat16().float()), reference)


def _map(value, fn):
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, tuple):
        return tuple(_map(v, fn) for v in value)
    return {k: _map(v, fn) for k, v in value.items()}


@pytest.mark.parametrize("budget", [0, 20_000])
def test_cache_beyond_the_host_budget_spills_to_a_file_and_edits_the_same(tiny_editor, tmp_path, budget):
    latents = _latents(tiny_editor, _clip(9))
    settings = Settings(steps=3, keyframe_interval=4)
    in_memory = _invert(tiny_editor, latents, settings)
    spilled = _invert(tiny_editor, latents, settings.replace(cache_host_bytes=budget), folder=tmp_path)
    store = spilled.store
    assert store.host_bytes <= budget and store.spill_bytes > 0 and store.nbytes == in_memory.store.nbytes
    files = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            files.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # the listing's own descriptor, closed by now
            pass
    assert any(f.startswith(str(tmp_path / "ipfacediff-cache-")) and f.endswith("(deleted)") for f in files)
    assert not list(tmp_path.iterdir())  # unlinked at once: nothing is left behind
    assert torch.equal(_edit(tiny_editor, spilled, settings), _edit(tiny_editor, in_memory, settings))


def test_crops_default_to_the_models_native_size(tiny_editor):
    frames = _clip(3, 128, 160)
    out = tiny_editor.edit(frames, "add glasses", Settings(steps=2, face_mode="full"))
    assert tiny_editor.models.native_resolution == 64 and out.stats["model_size"] == [64, 64]
    assert out.frames[0].shape == (128, 160, 3)
    wider = tiny_editor.edit(frames, "add glasses", Settings(steps=2, face_mode="full", resolution=128))
    assert wider.stats["model_size"] == [128, 128]


def test_training_defaults_to_the_models_native_size(tmp_path):
    from engine.training import TrainConfig, train
    from engine.training.samples import make_face_folder

    faces = make_face_folder(tmp_path / "faces", n=4, size=64, seed=0)  # 64² images: below 512
    cfg = TrainConfig(role="identity", data=str(faces), out=str(tmp_path / "out"), model="tiny", batch_size=2,
                      max_steps=1, workers=0, checkpoint_every=0, sample_every=0, cpu=True, face_embedder="tiny")
    assert cfg.resolution is None
    train(cfg, say=lambda m: None, progress=False)
    card = (tmp_path / "out" / "README.md").read_text()
    assert "at 64²" in card
