"""Loading paths: a saved folder, LoRA adapters for ε1/ε2 on one base, a full UNet folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from peft import LoraConfig

from engine.editor import Editor
from engine.errors import UserError
from engine.models import load_models, pick_dtype
from engine.presets import build_preset, save_preset
from engine.settings import Settings

S = Settings(steps=3, face_mode="full")  # the clip is noise: edit whole frames (auto would pass it through)


def _clip():
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(5)]


def _lora(folder, seed: int, unet=None):
    """Save a LoRA adapter with non-zero random weights for the tiny UNet."""
    unet = unet or build_preset("tiny")["unet"]
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]),
                     adapter_name="x")
    gen = torch.Generator().manual_seed(seed)
    for name, p in unet.named_parameters():
        if "lora_B" in name:
            p.data = torch.randn(p.shape, generator=gen) * 0.5
    unet.save_lora_adapter(str(folder), adapter_name="x")
    return folder


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return save_preset("tiny", tmp_path_factory.mktemp("tiny") / "pipe")


def test_saved_folder_loads_back_identically_and_stays_labelled(saved):
    by_path = Editor(str(saved))
    assert by_path.models.random_weights, "a saved preset must still be labelled as random weights"
    a = by_path.edit(_clip(), "add glasses", S).frames
    b = Editor("tiny").edit(_clip(), "add glasses", S).frames
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_direction_adapter_changes_the_output_and_shares_the_base(saved, tmp_path):
    adapter = _lora(tmp_path / "dir", seed=1)
    ed = Editor(str(saved), direction=str(adapter))
    assert len(ed.models.unets()) == 1 and ed.models.direction.adapter == "direction"
    assert "lora:" in ed.models.identity_string
    base = Editor(str(saved)).edit(_clip(), "add glasses", S).frames
    edited = ed.edit(_clip(), "add glasses", S).frames
    assert not np.array_equal(np.stack(base), np.stack(edited))


def test_two_adapters_on_one_base_switch(saved, tmp_path):
    ident, direc = _lora(tmp_path / "id", seed=2), _lora(tmp_path / "dir", seed=3)
    ed = Editor(str(saved), identity=str(ident), direction=str(direc))
    assert len(ed.models.unets()) == 1
    unet = ed.models.identity.unet
    x, emb = torch.randn(1, 4, 8, 8), torch.randn(1, 77, 32)
    with torch.no_grad():
        out_id = ed.models.identity.activate()(x, 10, encoder_hidden_states=emb).sample
        out_dir = ed.models.direction.activate()(x, 10, encoder_hidden_states=emb).sample
        out_id2 = ed.models.identity.activate()(x, 10, encoder_hidden_states=emb).sample
    assert not torch.allclose(out_id, out_dir)
    torch.testing.assert_close(out_id, out_id2)
    assert set(unet.peft_config) == {"identity", "direction"}
    result = ed.edit(_clip(), "add glasses", S)
    assert len(result.frames) == 5


def test_full_unet_folder_as_identity(saved, tmp_path):
    other = build_preset("tiny", seed=5)["unet"]
    other.save_pretrained(tmp_path / "unet_id")
    ed = Editor(str(saved), identity=str(tmp_path / "unet_id"))
    assert len(ed.models.unets()) == 2
    assert ed.models.identity.unet is not ed.models.direction.unet
    assert len(ed.edit(_clip(), "add glasses", S).frames) == 5


def test_adapter_of_another_base_is_refused(saved, tmp_path):
    from diffusers import UNet2DConditionModel

    from engine.presets import PRESETS

    wider = UNet2DConditionModel(**{**PRESETS["tiny"].unet, "block_out_channels": (64, 64, 128, 128)})
    adapter = _lora(tmp_path / "wide", seed=4, unet=wider)
    with pytest.raises(UserError, match="does not match the base model"):
        load_models(str(saved), direction=str(adapter))


@pytest.mark.parametrize("source, match", [
    ("/no/such/folder", "neither a preset"),
    ("not a model", "neither a preset"),
])
def test_bad_model_sources(source, match):
    with pytest.raises(UserError, match=match):
        load_models(source)


def test_missing_hub_model_offline_is_one_sentence():
    with pytest.raises(UserError, match="hub is offline"):
        load_models("stabilityai/stable-diffusion-2-1-base")


def test_missing_role_path():
    with pytest.raises(UserError, match="does not exist"):
        load_models("tiny", identity="/no/such/adapter")


def test_auto_dtype_per_device():
    assert pick_dtype(torch.device("cpu")) == torch.float32
    assert pick_dtype(torch.device("cpu"), "bf16") == torch.bfloat16
    with pytest.raises(UserError):
        pick_dtype(torch.device("cpu"), "int8")


def _card(folder, base: str):
    (folder / "model_card.json").write_text(json.dumps({"role": "direction", "base_model": base}))
    return folder


def test_an_adapter_trained_on_tiny_is_refused_on_tiny_v_and_loads_on_tiny(tmp_path):
    adapter = _card(_lora(tmp_path / "dir", seed=1), "tiny")
    with pytest.raises(UserError, match="trained on 'tiny', not on the loaded base 'tiny-v'; load it with --preset"):
        load_models("tiny-v", direction=str(adapter))
    assert load_models("tiny", direction=str(adapter)).direction.adapter == "direction"


def test_a_peft_adapter_config_naming_another_base_is_refused(saved, tmp_path):
    adapter = _lora(tmp_path / "id", seed=2)
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "org/other-model"}))
    with pytest.raises(UserError, match="trained on 'org/other-model'"):
        load_models(str(saved), identity=str(adapter))


def test_a_base_in_the_hub_cache_matches_an_adapter_naming_its_hub_id(tmp_path):
    snapshot = save_preset("tiny", tmp_path / "models--org--sd" / "snapshots" / "abc")
    adapter = _card(_lora(tmp_path / "dir", seed=1), "org/sd")
    assert load_models(str(snapshot), direction=str(adapter)).direction.adapter == "direction"


def test_loading_a_base_with_two_adapters_prints_nothing_on_stderr(saved, tmp_path):
    """No torchvision notices, loading bars or peft's "Already found a peft_config" (issue 15 item 12)."""
    ident, direc = _lora(tmp_path / "id", seed=2), _lora(tmp_path / "dir", seed=3)
    env = {k: v for k, v in os.environ.items() if k != "TRANSFORMERS_VERBOSITY"}
    code = f"from engine.models import load_models; load_models({str(saved)!r}, identity={str(ident)!r}, " \
           f"direction={str(direc)!r})"
    proc = subprocess.run([sys.executable, "-c", code], env={**env, "HF_HUB_OFFLINE": "1"}, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and proc.stderr == ""
