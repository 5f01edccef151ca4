"""An inversion saved to disk and read back is the same inversion; the editor's cache hook skips
inversion on a hit; the preview callback gets the first keyframe, identical to its final frame."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch
from safetensors import safe_open

from engine import inversion_file
from engine.editor import inversion_key
from engine.settings import Settings

FAST = Settings(steps=3, face_mode="full")


def _flat(value):
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _flat(v)]
    if isinstance(value, dict):
        return [t for k in sorted(value) for t in _flat(value[k])]
    return []


@pytest.fixture(scope="module")
def inverted(tiny_editor):
    rng = np.random.default_rng(11)
    frames = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(5)]
    return frames, tiny_editor.invert(frames, FAST)


@pytest.mark.parametrize("spill", [False, True])
def test_saved_inversion_loads_back_identical(tiny_editor, inverted, tmp_path, spill):
    frames, inv = inverted
    path = tmp_path / "inv.safetensors"
    written = inversion_file.save(inv, path)
    assert path.stat().st_size == written and not list(tmp_path.glob(".*.tmp*"))
    with safe_open(str(path), framework="pt") as f:  # a standard safetensors file
        assert f.metadata()["format"] == inversion_file.FORMAT
        n_tensors = len(list(f.keys()))
    assert n_tensors == sum(len(_flat(inv.store.host(k))) for k in inv.store.keys())

    # spill: no host budget, every item goes to a memory-mapped file in tmp_path
    back = inversion_file.load(path, tiny_editor.models, FAST.replace(cache_host_bytes=0 if spill else None),
                               tmp_path)
    assert back.store.spill_bytes == (back.store.nbytes if spill else 0)
    assert back.signature == inv.signature and back.cached is inv.cached is True
    assert back.plan.keyframes == inv.plan.keyframes and np.array_equal(back.plan.w_past, inv.plan.w_past)
    assert back.store.nbytes == inv.store.nbytes
    assert sorted(map(str, back.store.keys())) == sorted(map(str, inv.store.keys()))
    for key in inv.store.keys():
        value, got = inv.store.host(key), back.store.get(key)
        assert type(got) is type(value)
        for a, b in zip(_flat(value), _flat(got)):
            assert a.dtype == b.dtype and a.shape == b.shape and a.stride() == b.stride() and torch.equal(a, b)
    assert torch.equal(back.schedule.forward.timesteps, inv.schedule.forward.timesteps)

    one = tiny_editor.edit(frames, "add glasses", FAST, inversion=inv)
    two = tiny_editor.edit(frames, "add glasses", FAST, inversion=back)
    assert "inversion" not in two.stats["unet_evals"]
    assert all(np.array_equal(a, b) for a, b in zip(one.frames, two.frames))


def test_foreign_file_is_refused(tiny_editor, tmp_path):
    path = tmp_path / "other.safetensors"
    head = json.dumps({"__metadata__": {"format": "something-else"}}).encode()
    path.write_bytes(struct.pack("<Q", len(head)) + head)
    with pytest.raises(ValueError, match="not an ipfacediff-inversion"):
        inversion_file.load(path, tiny_editor.models, FAST)


class DictCache:
    """The smallest `InversionCache`: a dict, recording what the editor asked for."""

    def __init__(self):
        self.items, self.gets, self.puts = {}, [], []

    def get(self, key, restore):
        self.gets.append(key)
        return self.items.get(key)

    def put(self, key, inversion):
        self.puts.append(key)
        self.items[key] = inversion


def test_editor_uses_the_cache_by_content(tiny_editor, clip16):
    cache = DictCache()
    clip = clip16[:6]
    first = tiny_editor.edit(clip, "add glasses", FAST, inversions=cache)
    assert first.stats["inversion_cache"] == "miss" and "inversion" in first.stats["unet_evals"]
    assert len(cache.puts) == 1 and cache.gets == cache.puts
    again = tiny_editor.edit(clip, "red hair", FAST.replace(guidance_scale=3.0), inversions=cache)
    assert again.stats["inversion_cache"] == "hit" and "inversion" not in again.stats["unet_evals"]
    assert again.stats["unet_evals"]["total"] == 2 * 6 * FAST.steps + 2 * 2  # edit passes + 2 keyframes re-run twice
    assert len(cache.puts) == 1
    # one changed pixel, or a setting the inversion depends on, is another key
    touched = [f.copy() for f in clip]
    touched[3][10, 10, 0] ^= 1
    tiny_editor.edit(touched, "add glasses", FAST, inversions=cache)
    tiny_editor.edit(clip, "add glasses", FAST.replace(steps=4), inversions=cache)
    assert len(set(cache.puts)) == 3


def test_inversion_key_covers_pixels_and_signature():
    a = np.zeros((2, 8, 8, 3), np.float32)
    b = a.copy()
    b[1, 7, 7, 2] = 1e-7
    assert inversion_key(a, ("m", 2)) == inversion_key(a.copy(), ("m", 2))
    assert len({inversion_key(a, ("m", 2)), inversion_key(b, ("m", 2)), inversion_key(a, ("m", 3))}) == 3


@pytest.mark.parametrize("keyframes", [None, (2, 5)])
def test_preview_is_the_first_keyframe_before_the_rest(tiny_editor, clip16, keyframes, monkeypatch):
    import engine.editor as editor_module

    events = []
    real_decode = editor_module.decode

    def recording_decode(models, latents, *args):
        events.append(("decode", len(latents)))
        return real_decode(models, latents, *args)

    monkeypatch.setattr(editor_module, "decode", recording_decode)
    shown = []

    def preview(i, frame):
        events.append(("preview", i))
        shown.append((i, frame.copy()))

    result = tiny_editor.edit_crops(clip16[:7], "add glasses", FAST.replace(keyframes=keyframes), preview=preview)
    first = (keyframes or (0,))[0]
    assert events == [("decode", 1), ("preview", first), ("decode", 6)]  # the keyframe alone, shown, then the rest
    (index, frame), = shown
    assert index == result.stats["keyframes"][0] == first
    assert frame.dtype == np.uint8 and frame.shape == clip16[0].shape
    assert np.array_equal(frame, result.frames[index])


def test_preview_of_a_face_clip_is_the_pasted_full_frame(tiny_editor):
    from engine.faces.samples import Actor, clip

    frames, _ = clip([Actor("astronaut", (160, 120), 120, shift=(4, 3), period=4)], 3, size=(240, 320))
    shown = []
    settings = Settings(steps=2, resolution=64, qc_every=0)
    result = tiny_editor.edit(frames, "add glasses", settings, preview=lambda i, f: shown.append((i, f)))
    assert result.stats["faces"]["mode"] == "crop"
    (index, frame), = shown
    assert frame.shape == frames[index].shape and frame.dtype == frames[index].dtype
    assert np.array_equal(frame, result.frames[index]) and not np.array_equal(frame, frames[index])


def test_weights_digest_follows_the_weights_not_the_name():
    from engine.models import load_models

    a, b, c = (load_models("tiny", device="cpu") for _ in range(3))
    assert a.identity_string == c.identity_string and a.weights_digest == b.weights_digest
    with torch.no_grad():
        next(c.identity.unet.parameters()).view(-1)[0] += 1.0  # same name, other weights
    assert c.weights_digest != a.weights_digest


def test_weights_digest_is_the_same_in_another_process():
    """The disk cache outlives the process: its key must not depend on hash seeds or addresses."""
    import os
    import subprocess
    import sys

    code = "from engine.models import load_models; print(load_models('tiny', device='cpu').weights_digest)"
    digests = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout.split()[-1] for seed in ("1", "2")}
    assert len(digests) == 1
