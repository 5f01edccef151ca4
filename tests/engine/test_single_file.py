"""Loading from ONE original-layout checkpoint file (`.safetensors` / `.ckpt`), offline.

The tiny preset is saved as a diffusers folder with its weights removed (the config
source) and exported to the original LDM single-file layout; loading the file with that
config must reproduce the preset's weights exactly and give the same edit.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline

from engine.editor import Editor
from engine.errors import UserError
from engine.models import load_models
from engine.presets import build_preset
from engine.settings import Settings

try:
    from .ldm_export import pipeline_to_ldm, save_single_file
except ImportError:  # rootdir-style collection (tests/engine is not a package)
    from ldm_export import pipeline_to_ldm, save_single_file

MODULES = ("unet", "vae", "text_encoder")


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    """(config folder without weights, {suffix: checkpoint path}) for the tiny preset."""
    root = tmp_path_factory.mktemp("single_file")
    parts = build_preset("tiny")
    pipe = StableDiffusionPipeline(**parts, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    config = root / "tiny-config"
    pipe.save_pretrained(config)
    for weights in [*config.rglob("*.safetensors"), *config.rglob("*.bin")]:
        weights.unlink()  # the checkpoint must be the only source of weights
    files = {s: save_single_file(root / f"tiny{s}", parts["unet"], parts["vae"], parts["text_encoder"])
             for s in (".safetensors", ".ckpt")}
    return config, files


def test_export_uses_original_layout():
    parts = build_preset("tiny")
    state = pipeline_to_ldm(parts["unet"], parts["vae"], parts["text_encoder"])
    assert len(state) == sum(len(parts[m].state_dict()) for m in MODULES)
    prefixes = ("model.diffusion_model.", "first_stage_model.", "cond_stage_model.transformer.text_model.")
    assert all(k.startswith(prefixes) for k in state)
    # keys diffusers' single-file detection and the original UNet/VAE modules use
    for key in ("model.diffusion_model.input_blocks.1.1.proj_in.weight",
                "model.diffusion_model.output_blocks.2.1.conv.weight",
                "model.diffusion_model.output_blocks.11.0.skip_connection.weight",
                "model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight",
                "first_stage_model.decoder.up.3.block.1.conv2.weight",
                "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight"):
        assert key in state, key
    assert state["first_stage_model.encoder.mid.attn_1.q.weight"].shape == (16, 16, 1, 1)  # 1x1 conv
    assert state["model.diffusion_model.input_blocks.1.1.proj_in.weight"].ndim == 2  # linear projection


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_weights_equal_preset(tiny_files, suffix):
    config, files = tiny_files
    models = load_models(str(files[suffix]), config=str(config), device="cpu", dtype="fp32")
    assert not models.random_weights
    reference = build_preset("tiny")
    loaded = {"unet": models.identity.unet, "vae": models.vae, "text_encoder": models.text_encoder}
    for name in MODULES:
        want, got = reference[name].state_dict(), loaded[name].state_dict()
        assert want.keys() == got.keys(), name
        for key, tensor in want.items():
            assert got[key].dtype == tensor.dtype and torch.equal(got[key], tensor), f"{name}.{key}"
    assert models.scheduler_config.prediction_type == reference["scheduler"].config.prediction_type


@pytest.mark.slow
def test_editor_from_file_matches_preset(tiny_files):
    config, files = tiny_files
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(4)]
    settings = Settings(steps=3, face_mode="full")  # noise: whole frames
    want = Editor("tiny", device="cpu", dtype="fp32").edit(frames, "add glasses", settings)
    got = Editor(str(files[".safetensors"]), model_config=str(config), device="cpu",
                 dtype="fp32").edit(frames, "add glasses", settings)
    assert len(got.frames) == len(want.frames) == 4
    for a, b in zip(got.frames, want.frames):
        assert a.dtype == np.uint8 and a.shape == (64, 64, 3)
        np.testing.assert_array_equal(a, b)


def _assert_sentence(exc: pytest.ExceptionInfo, path: Path, *words: str) -> str:
    msg = str(exc.value)
    assert str(path) in msg and msg.endswith(".") and "\n" not in msg, msg
    for word in words:
        assert word in msg, msg
    return msg


@pytest.mark.parametrize("content", [b"", b"this is not a checkpoint", "half"])
@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_corrupt_file_is_user_error(tiny_files, tmp_path, content, suffix):
    config, files = tiny_files
    bad = tmp_path / f"bad{suffix}"
    if content == "half":  # a real checkpoint cut short
        data = files[suffix].read_bytes()
        content = data[: len(data) // 2]
    bad.write_bytes(content)
    with pytest.raises(UserError) as exc:
        load_models(str(bad), config=str(config), device="cpu", dtype="fp32")
    msg = _assert_sentence(exc, bad, "checkpoint")
    assert "hub" not in msg and "download" not in msg, msg


def test_other_safetensors_is_user_error(tiny_files, tmp_path):
    """A valid safetensors file that holds no Stable Diffusion weights."""
    from safetensors.torch import save_file

    config, _ = tiny_files
    other = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(2, 2)}, str(other))
    with pytest.raises(UserError) as exc:
        load_models(str(other), config=str(config), device="cpu", dtype="fp32")
    _assert_sentence(exc, other, "config")


def test_config_mismatch_is_user_error(tiny_files, tmp_path):
    config, files = tiny_files
    wider = tmp_path / "wider-config"
    shutil.copytree(config, wider)
    unet_config = wider / "unet" / "config.json"
    data = json.loads(unet_config.read_text())
    data["block_out_channels"] = [32, 64, 64, 64]
    unet_config.write_text(json.dumps(data))
    with pytest.raises(UserError) as exc:
        load_models(str(files[".safetensors"]), config=str(wider), device="cpu", dtype="fp32")
    _assert_sentence(exc, files[".safetensors"], str(wider))


def test_missing_config_folder_is_user_error(tiny_files, tmp_path):
    _, files = tiny_files
    missing = tmp_path / "no-such-config"
    with pytest.raises(UserError) as exc:
        load_models(str(files[".safetensors"]), config=str(missing), device="cpu", dtype="fp32")
    _assert_sentence(exc, missing, "config")


def test_no_config_offline_is_user_error(tiny_files, monkeypatch):
    """Without a config diffusers infers one from the hub; offline that must be a clear
    error, not a download attempt."""
    _, files = tiny_files
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(UserError) as exc:
        load_models(str(files[".safetensors"]), device="cpu", dtype="fp32")
    _assert_sentence(exc, files[".safetensors"], "offline")


@pytest.mark.parametrize("name", ["model.bin", "model.pt", "model"])
def test_wrong_extension_is_user_error(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\0" * 16)
    with pytest.raises(UserError) as exc:
        load_models(str(path), device="cpu", dtype="fp32")
    _assert_sentence(exc, path, ".safetensors", ".ckpt")
