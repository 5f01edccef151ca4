"""Training end to end on the tiny preset (CPU, a few steps): losses finite and falling on a
fixed batch, the adapter reloads into the engine and changes its output, --resume continues
the step count and optimizer state exactly, clear errors through the CLI."""

from __future__ import annotations

import csv
import json
import math

import cv2
import numpy as np
import pytest
import torch

from engine.cli import main
from engine.errors import UserError
from engine.editor import Editor
from engine.settings import Settings
from engine.training import train
from engine.training.config import LORA_WEIGHTS
from engine.training.loop import Trainer
from tests.training.conftest import tiny_config

QUIET = dict(say=lambda m: None, progress=False)


def _losses(out) -> list[dict]:
    with open(out / "logs" / "losses.csv", newline="") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _frames() -> list[np.ndarray]:
    from skimage import data  # the astronaut, as in the training data

    face = cv2.resize(data.astronaut()[20:240, 120:340], (64, 64), interpolation=cv2.INTER_AREA)
    return [np.ascontiguousarray(np.roll(face, i, axis=1)) for i in range(4)]


def _edit(**roles) -> np.ndarray:
    result = Editor("tiny", **roles).edit(_frames(), "add glasses", Settings(steps=3, keyframe_interval=2, face_mode="full"))
    return np.stack(result.frames).astype(np.float32)


@pytest.fixture(scope="module")
def base_output():
    return _edit()


def _cli(role, faces, out, *extra) -> list[str]:
    return ["train", role, "--data", str(faces), "--out", str(out), "--preset", "tiny", "--resolution", "64",
            "--batch-size", "2", "--workers", "0", "--lr", "1e-3", "--quiet", "--cpu", "--checkpoint-every", "0",
            *extra]


def test_identity_cli_trains_logs_samples_and_loads_as_epsilon_1(faces, tmp_path, base_output, capsys):
    out = tmp_path / "eps1"
    rc = main(_cli("identity", faces, out, "--face-embedder", "tiny", "--max-steps", "4", "--sample-every", "2"))
    assert rc == 0, capsys.readouterr().err
    rows = _losses(out)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(math.isfinite(r[k]) for r in rows for k in ("loss", "l1", "id"))
    card = json.loads((out / "model_card.json").read_text())
    assert card["base_model"] == "tiny" and card["random_weights"] and card["steps"] == 4
    assert card["data"]["images"] == 16 and set(card["final_losses"]) == {"loss", "l1", "id"}
    assert "--preset tiny --identity-model" in (out / "README.md").read_text()
    grid = cv2.imread(str(out / "samples" / "step_000004.png"))
    assert grid is not None and grid.shape[0] > 2 * 64 and grid.shape[1] >= 4 * 64  # original / reconstruction
    assert (out / "samples" / "step_000002.png").exists() and (out / LORA_WEIGHTS).exists()
    tuned = _edit(identity=str(out))
    assert np.abs(tuned - base_output).max() > 1.0  # the adapter is live in ε1's role


def test_direction_cli_with_an_edit_file_loads_as_epsilon_2(faces, tmp_path, base_output, capsys):
    edits = tmp_path / "edits.txt"
    edits.write_text("# attributes\nwearing glasses\n{caption} with a thick beard\nwith blonde hair\n")
    out = tmp_path / "eps2"
    rc = main(_cli("direction", faces, out, "--edits", str(edits), "--clip", "tiny", "--max-steps", "3",
                   "--sample-every", "3", "--samples", "3"))
    assert rc == 0, capsys.readouterr().err
    assert all(math.isfinite(r[k]) for r in _losses(out) for k in ("loss", "sim", "dir"))
    prompts = (out / "samples" / "step_000003.txt").read_text().splitlines()
    assert prompts[1].endswith("with a thick beard") and "astronaut" not in prompts[0]
    card = json.loads((out / "model_card.json").read_text())
    assert card["role"] == "direction" and card["data"]["edits"] == 3 and card["clip"] == "tiny"
    tuned = _edit(direction=str(out))
    assert np.abs(tuned - base_output).max() > 1.0


@pytest.mark.parametrize("role, steps", [("identity", 40), ("direction", 20)])
def test_overfit_one_fixed_batch_the_loss_falls(faces, tmp_path, role, steps):
    cfg = tiny_config(role, faces, tmp_path / role, overfit_batch=True, max_steps=steps, lora_rank=8,
                      learning_rate=1e-2 if role == "identity" else 3e-3)
    summary = train(cfg, **QUIET)
    losses = [r["loss"] for r in _losses(tmp_path / role)]
    assert len(losses) == steps and all(math.isfinite(x) for x in losses)
    assert summary["first_losses"]["loss"] == pytest.approx(losses[0], rel=1e-4)
    assert np.mean(losses[-3:]) < 0.8 * losses[0], losses


def test_resume_continues_steps_and_optimizer_state_exactly(faces, tmp_path):
    straight = tmp_path / "straight"
    train(tiny_config("identity", faces, straight, max_steps=4, checkpoint_every=2), **QUIET)
    split = tmp_path / "split"
    train(tiny_config("identity", faces, split, max_steps=2, checkpoint_every=2), **QUIET)
    assert json.loads((split / "checkpoints" / "step_000002" / "train_state.json").read_text())["step"] == 2
    trainer = Trainer(tiny_config("identity", faces, split, max_steps=4, checkpoint_every=2, resume="latest"), **QUIET)
    summary = trainer.run()
    assert summary["trained_steps"] == 2 and summary["steps"] == 4
    state = trainer.opt.state_dict()["state"]
    assert {int(s["step"]) for s in state.values()} == {4}  # Adam's moments carried on
    assert [r["step"] for r in _losses(split)] == [1, 2, 3, 4]
    from safetensors.torch import load_file

    a, b = load_file(str(straight / LORA_WEIGHTS)), load_file(str(split / LORA_WEIGHTS))
    assert a.keys() == b.keys()
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
    assert max(b[k].abs().max().item() for k in b if "lora_B" in k) > 0  # trained, not the zero init
    same = [r["loss"] for r in _losses(straight)], [r["loss"] for r in _losses(split)]
    assert np.allclose(*same, rtol=1e-4)


def test_full_finetune_saves_a_unet_that_loads_as_a_role(faces, tmp_path):
    out = tmp_path / "full"
    summary = train(tiny_config("identity", faces, out, full=True, max_steps=1, learning_rate=1e-4), **QUIET)
    assert summary["trainable_parameters"] > 1_000_000 and (out / "unet" / "config.json").exists()
    models = Editor("tiny", identity=str(out)).models
    assert models.identity.source.startswith("unet:") and len(models.unets()) == 2


def test_clear_errors_from_the_cli(faces, tmp_path, capsys):
    def err(argv):
        assert main(argv) == 2
        return capsys.readouterr().err

    assert "needs an edit list" in err(_cli("direction", faces, tmp_path / "o", "--clip", "tiny"))
    assert "edit list" in err(_cli("direction", faces, tmp_path / "o", "--clip", "tiny", "--edits", str(tmp_path / "x")))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no images" in err(_cli("identity", empty, tmp_path / "o", "--face-embedder", "tiny"))
    assert "smaller than the training resolution" in err(
        _cli("identity", faces, tmp_path / "o", "--face-embedder", "tiny", "--resolution", "128"))
    assert "multiple of 64" in err(_cli("identity", faces, tmp_path / "o", "--face-embedder", "tiny", "--resolution", "72"))
    assert "not a training checkpoint" in err(
        _cli("identity", faces, tmp_path / "o", "--face-embedder", "tiny", "--resume", str(tmp_path)))
    # a checkpoint of one base model cannot continue on another
    first = tmp_path / "ck"
    train(tiny_config("identity", faces, first, max_steps=1, checkpoint_every=1), **QUIET)
    argv = _cli("identity", faces, first, "--face-embedder", "tiny", "--resume", "latest", "--max-steps", "2")
    argv[argv.index("tiny", argv.index("--preset"))] = "tiny-v"
    assert "was made for base model 'tiny'" in err(argv)


def test_sample_grid_shows_original_and_reconstruction_and_the_console_and_grid_say_random_weights(faces, tmp_path):
    cfg = tiny_config("identity", faces, tmp_path / "g", max_steps=1, sample_every=1, samples=4)
    said: list[str] = []
    train(cfg, say=said.append, progress=False)
    grid = cv2.imread(str(tmp_path / "g" / "samples" / "step_000001.png"))
    # the random-weights caption (red text), then two labelled rows of four 64² tiles with 2 px gaps
    assert grid.shape[1] == 4 * 64 + 3 * 2 and grid.shape[0] == 14 + 2 * (14 + 64 + 2)
    caption = grid[:14].astype(int)  # BGR
    assert ((caption[..., 2] > 150) & (caption[..., 0] < 100)).sum() > 20  # red letters
    assert torch.tensor(grid[28:28 + 64, :64]).float().std() > 10  # a real photo, not blank
    assert said and all(line.startswith("[RANDOM WEIGHTS] ") for line in said), said


def test_precision_accumulation_checkpointing_and_inversion_options_run(faces, tmp_path):
    """bf16 autocast (CPU), 2 micro-batches per step, gradient checkpointing, DDIM-inverted x_t."""
    cfg = tiny_config("direction", faces, tmp_path / "o", max_steps=2, grad_accum=2, mixed_precision="bf16",
                      gradient_checkpointing=True, inversion_steps=2, direction_ref="image")
    summary = train(cfg, **QUIET)
    assert summary["steps"] == 2 and all(math.isfinite(v) for v in summary["final_losses"].values())
    card = json.loads((tmp_path / "o" / "model_card.json").read_text())
    assert card["mixed_precision"] == "bf16" and card["settings"]["grad_accum"] == 2


def test_the_cli_module_is_light_and_shares_the_engine_defaults():
    import subprocess
    import sys

    code = ("import sys, engine.training.cli; "
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"
    from engine.models import DEFAULT_MODEL
    from engine.training.config import DEFAULT_MODEL as TRAIN_DEFAULT

    assert TRAIN_DEFAULT == DEFAULT_MODEL


def test_tensorboard_scalars_when_installed(faces, tmp_path):
    pytest.importorskip("tensorboard")
    train(tiny_config("identity", faces, tmp_path / "tb", max_steps=1), **QUIET)
    assert list((tmp_path / "tb" / "logs" / "tensorboard").glob("events.out.tfevents.*"))


def test_checkpoint_fingerprint_ignores_per_process_config_noise():
    """A resumed run is a new process: diffusers' `_use_default_values` (built from a set, so
    its order follows the string hash seed) must not change the fingerprint."""
    from engine.presets import build_preset
    from engine.training.checkpoints import fingerprint

    unet = build_preset("tiny")["unet"]
    cfg = tiny_config("identity", ".", ".")
    config = dict(unet.config)
    shuffled = type("U", (), {"config": {**config, "_use_default_values": config["_use_default_values"][::-1]}})()
    assert fingerprint(cfg, unet) == fingerprint(cfg, shuffled)
    wider = type("U", (), {"config": {**config, "cross_attention_dim": 64}})()
    assert fingerprint(cfg, unet)["unet_config"] != fingerprint(cfg, wider)["unet_config"]


def test_two_processes_through_torchrun_share_the_work(faces, tmp_path):
    """Multi-process data parallel (gloo on CPU, as `accelerate launch` does on GPUs)."""
    import os
    import shutil
    import subprocess
    import sys

    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    if torchrun is None or not torch.distributed.is_available():
        pytest.skip("torch.distributed / torchrun not available")
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    import socket

    with socket.socket() as sock:  # a free port for the rendezvous
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = [torchrun, "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(port), "-m", "engine.cli",
            *_cli("identity", faces, out, "--face-embedder", "tiny", "--max-steps", "2", "--checkpoint-every", "2")]
    run = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stderr.count("trained 2 steps") == 1  # one report, from the main process
    card = json.loads((out / "model_card.json").read_text())
    assert card["world_size"] == 2 and card["steps"] == 2
    assert (out / "checkpoints" / "step_000002" / "random_states_1.pkl").exists()


def test_an_image_that_fails_to_decode_in_a_worker_is_one_sentence(faces, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(faces, data)
    for png in sorted(data.glob("*.png")):
        png.write_bytes(png.read_bytes()[: len(png.read_bytes()) // 2])  # header fine, pixels cut
    with pytest.raises(UserError) as err:
        train(tiny_config("identity", data, tmp_path / "o", workers=1, max_steps=1), **QUIET)
    message = str(err.value)
    assert "cannot be decoded" in message and "\n" not in message and "Traceback" not in message


def test_missing_arcface_or_clip_fail_before_loading_the_model(faces, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("INSIGHTFACE_HOME", str(tmp_path / "none"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = ["train", "identity", "--data", str(faces), "--out", str(tmp_path / "o"), "--model", "no-such/model",
            "--resolution", "64"]
    assert main(argv) == 2 and "no ArcFace weights found" in capsys.readouterr().err
    argv = ["train", "direction", "--data", str(faces), "--out", str(tmp_path / "o"), "--edits", "builtin",
            "--model", "no-such/model", "--clip", "no-such/clip", "--resolution", "64"]
    assert main(argv) == 2 and "could not load CLIP 'no-such/clip'" in capsys.readouterr().err
