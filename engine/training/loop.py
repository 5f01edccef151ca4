"""The fine-tuning loop for ε1 (identity) and ε2 (direction), driven by accelerate.

In: a `TrainConfig` (the CLI's flags), optionally a face embedder / CLIP module to use
instead of the configured ones. Out: in `config.out` the LoRA adapter (or `unet/` for a
full fine-tune) that `engine.models.load_models(identity=, direction=)` loads, a model
card, logs, sample grids and checkpoints (see `outputs.py`); returns a summary dict.

accelerate gives mixed precision, gradient accumulation and multi-GPU (`accelerate launch
-m engine.cli train ...`); checkpoints are `accelerator.save_state` folders holding only
the trainable weights, the optimizer, scheduler and RNG states, and `train_state.json`.
Noise, timesteps and the batch order are functions of (seed, micro-batch counter), so a
resumed run continues exactly the stream of an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import torch

from engine.errors import UserError
from engine.io.write import RANDOM_WEIGHTS_LABEL
from engine.models import load_models
from engine.training.checkpoints import checkpoints, fingerprint, resume_dir
from engine.training.clip import Clip, load_clip
from engine.training.config import LORA_WEIGHTS, TrainConfig
from engine.training.data import FaceFolder, StepBatches, collate, compose_target, read_edits
from engine.training.embedders import FaceEmbedder, build_face_embedder
from engine.training.losses import Diffusion, direction_loss, identity_loss
from engine.training.outputs import LossLog, write_card, write_grid


def _fresh_accelerate_state() -> None:
    """accelerate keeps one AcceleratorState per process; a second run in the same process
    (tests, a notebook) may ask for another precision. The process group (PartialState) stays."""
    from accelerate.state import AcceleratorState, GradientState

    for state in (AcceleratorState, GradientState):
        reset = getattr(state, "_reset_state", None)
        if reset is not None:
            reset()


@contextmanager
def _diffusers_quiet():
    """diffusers warns on every `.to(dtype)` of a model (even with nothing to keep in fp32)."""
    from diffusers.utils import logging as dlogging

    level = dlogging.get_verbosity()
    dlogging.set_verbosity_error()
    try:
        yield
    finally:
        dlogging.set_verbosity(level)


def _cast(module, dtype: torch.dtype):
    if any(p.dtype != dtype for p in module.parameters()):
        with _diffusers_quiet():
            module.to(dtype=dtype)
    return module


def _batches(loader):
    """The loader's batches; a UserError raised in a worker process comes back as one sentence
    (the DataLoader wraps it in the worker's traceback)."""
    it = iter(loader)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            return
        except UserError as exc:
            raise UserError(str(exc).strip().splitlines()[-1].split("UserError: ", 1)[-1]) from None
        yield batch


class _TextCache:
    """SD text-encoder embeddings of prompts (a bounded LRU; captions × edits can be many)."""

    def __init__(self, models, size: int = 512):
        self.models, self.size, self.cache = models, size, OrderedDict()

    @torch.no_grad()
    def __call__(self, prompts: list[str]) -> torch.Tensor:
        m = self.models
        missing = [p for p in dict.fromkeys(prompts) if p not in self.cache]
        if missing:
            ids = m.tokenizer(missing, padding="max_length", max_length=m.tokenizer.model_max_length,
                              truncation=True, return_tensors="pt").input_ids.to(m.device)
            for p, e in zip(missing, m.text_encoder(ids)[0]):
                self.cache[p] = e
        for p in prompts:
            self.cache.move_to_end(p)
        while len(self.cache) > self.size:
            self.cache.popitem(last=False)
        return torch.stack([self.cache[p] for p in prompts])


class Trainer:
    """One run: models, objective, optimizer; `run()` trains to `max_steps`."""

    def __init__(self, cfg: TrainConfig, *, embedder: FaceEmbedder | None = None, clip: Clip | None = None,
                 say: Callable[[str], None] = print, progress: bool = True):
        from accelerate import Accelerator

        self.cfg, self.say, self.progress = cfg, say, progress
        self.out = Path(cfg.out).expanduser()
        self.edits = read_edits(cfg.edits) if cfg.role == "direction" else []
        # the scorer before the (slow) model load, so a missing ArcFace/CLIP fails fast
        if cfg.role == "identity":
            self.embedder = embedder or build_face_embedder(cfg.face_embedder, cfg.face_models)
        else:
            self.clip = clip or load_clip(cfg.clip)
        _fresh_accelerate_state()
        try:
            self.acc = Accelerator(mixed_precision=cfg.mixed_precision, gradient_accumulation_steps=cfg.grad_accum,
                                   cpu=cfg.cpu)
        except (ValueError, RuntimeError) as exc:
            raise UserError(f"accelerate refused the setup: {str(exc).splitlines()[0]}") from None
        acc = self.acc
        if not acc.is_main_process:
            self.say = lambda message: None
        self.models = m = load_models(cfg.model, device=str(acc.device), dtype="fp32", config=cfg.model_config)
        if m.random_weights:  # every console line says so (the bar and the sample grids too)
            say_plain = self.say
            self.say = lambda message: say_plain(f"{RANDOM_WEIGHTS_LABEL} {message}")
        self.cfg = cfg = dataclasses.replace(cfg, resolution=cfg.resolution or m.native_resolution)
        self.data = FaceFolder(cfg.data, cfg.resolution, cfg.caption)
        if cfg.resolution % m.unet_multiple:
            raise UserError(f"--resolution must be a multiple of {m.unet_multiple} for this model.")
        self.wdtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(acc.mixed_precision, torch.float32)
        _cast(m.text_encoder.requires_grad_(False), self.wdtype)
        _cast(m.vae.requires_grad_(False), torch.float32 if self.wdtype == torch.float16 else self.wdtype)
        self.diffusion = Diffusion.of(m.scheduler_config, m.vae, acc.device)
        last = len(self.diffusion.alphas_cumprod) - 1
        if cfg.t_max > last or not 0 <= cfg.sample_t <= last:
            raise UserError(f"--t-max and --sample-t must be at most {last} for this model's scheduler.")
        self.text = _TextCache(m)
        if cfg.role == "identity":
            self.scorer = self.embedder.requires_grad_(False).eval().to(acc.device)
        else:
            self.scorer = self.clip.requires_grad_(False).eval().to(acc.device, self.wdtype)
        unet = m.identity.unet
        unet.requires_grad_(False)
        if cfg.full:
            unet.requires_grad_(True)
        else:
            from peft import LoraConfig

            _cast(unet, self.wdtype)
            unet.add_adapter(LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha or cfg.lora_rank,
                                        init_lora_weights="gaussian", target_modules=list(cfg.lora_targets)),
                             adapter_name=cfg.role)
            for p in unet.parameters():
                if p.requires_grad:
                    p.data = p.data.float()
        if cfg.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
            m.vae.enable_gradient_checkpointing()
        unet.train()
        self.fingerprint = fingerprint(cfg, unet)
        params = [p for p in unet.parameters() if p.requires_grad]
        if not params:
            raise UserError(f"no UNet layer matches --lora-targets {','.join(cfg.lora_targets)}.")
        self.n_trainable = sum(p.numel() for p in params)
        from diffusers.optimization import get_scheduler

        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = get_scheduler(cfg.lr_scheduler, opt, num_warmup_steps=cfg.lr_warmup_steps * acc.num_processes,
                              num_training_steps=cfg.max_steps * acc.num_processes)
        self.unet, self.opt, self.sched = acc.prepare(unet, opt, sched)
        acc.register_save_state_pre_hook(self._save_hook)
        acc.register_load_state_pre_hook(self._load_hook)

    # --- checkpoints -------------------------------------------------------------------
    def _bare(self):
        return self.acc.unwrap_model(self.unet)

    def _trainable_state(self) -> dict[str, torch.Tensor]:
        unet = self._bare()
        if self.cfg.full:
            return {k: v.detach().contiguous() for k, v in unet.state_dict().items()}
        from peft import get_peft_model_state_dict

        return {k: v.detach().contiguous() for k, v in get_peft_model_state_dict(unet, adapter_name=self.cfg.role).items()}

    def _save_hook(self, models, weights, output_dir) -> None:
        from safetensors.torch import save_file

        if self.acc.is_main_process:
            save_file(self._trainable_state(), str(Path(output_dir) / "trainable.safetensors"))
        weights.clear()  # accelerate must not write the whole (frozen) UNet

    def _load_hook(self, models, input_dir) -> None:
        from safetensors.torch import load_file

        state = load_file(str(Path(input_dir) / "trainable.safetensors"))  # CPU; copied into place
        unet = self._bare()
        try:
            if self.cfg.full:
                unet.load_state_dict(state)
            else:
                from peft import set_peft_model_state_dict

                result = set_peft_model_state_dict(unet, state, adapter_name=self.cfg.role)
                if getattr(result, "unexpected_keys", None):
                    raise RuntimeError(f"unexpected keys {result.unexpected_keys[:3]}")
        except RuntimeError as exc:
            raise UserError(f"the checkpoint {input_dir} does not match this model "
                            f"({str(exc).splitlines()[0][:160]}).") from None
        models.clear()

    def _resume(self) -> int:
        path = resume_dir(self.cfg, self.out)
        if path is None:
            if self.cfg.resume == "latest":
                self.say("no checkpoint to resume yet: starting from step 0.")
            return 0
        state = json.loads((path / "train_state.json").read_text())
        theirs = state.get("fingerprint", {})
        for key in ("role", "base_model", "unet_config", "weights"):
            if theirs.get(key) != self.fingerprint[key]:
                raise UserError(f"the checkpoint {path} was made for {key.replace('_', ' ')} "
                                f"'{theirs.get(key)}', this run has '{self.fingerprint[key]}'; they must match.")
        self.acc.load_state(str(path))
        self.say(f"resumed from {path} at step {state['step']}.")
        return int(state["step"])

    def _checkpoint(self, step: int) -> None:
        path = self.out / "checkpoints" / f"step_{step:06d}"
        self.acc.save_state(str(path))
        if self.acc.is_main_process:
            (path / "train_state.json").write_text(json.dumps(
                {"step": step, "fingerprint": self.fingerprint, "config": dataclasses.asdict(self.cfg)},
                indent=2, default=str))
            if self.cfg.checkpoints_limit > 0:
                for old in checkpoints(self.out)[:-self.cfg.checkpoints_limit]:
                    shutil.rmtree(old, ignore_errors=True)
        self.acc.wait_for_everyone()

    # --- one objective evaluation ------------------------------------------------------
    def _noise(self, z0: torch.Tensor, key: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(key)
        cfg = self.cfg
        t = torch.randint(cfg.t_min, cfg.t_max + 1, (z0.shape[0],), generator=g)
        noise = torch.randn(z0.shape, generator=g)
        return t.to(z0.device), noise.to(z0.device, z0.dtype)

    def _noised(self, z0, t, noise, cond):
        if self.cfg.inversion_steps:
            return self.diffusion.invert(self._bare(), z0, t, cond, self.cfg.inversion_steps)
        return self.diffusion.noised(z0, noise, t)

    def compute(self, batch: dict, key: int, unet=None, t_fixed: int | None = None) -> dict[str, torch.Tensor]:
        """Losses (and images) for one micro-batch; `unet` defaults to the trained module."""
        unet = unet or self.unet
        d, m, cfg = self.diffusion, self.models, self.cfg
        y0 = batch["pixels"].to(self.acc.device, torch.float32)
        z0 = d.encode(m.vae, y0)
        t, noise = self._noise(z0, key)
        if t_fixed is not None:
            t = torch.full_like(t, t_fixed)
        captions = batch["caption"]
        ref_cond = self.text(captions)
        if cfg.role == "identity":
            x_t = self._noised(z0, t, noise, ref_cond)
            out = unet(x_t, t, encoder_hidden_states=ref_cond).sample
            recon = d.decode(m.vae, d.x0(out, x_t, t))
            losses = identity_loss(recon, y0, self.scorer, cfg.l1_weight, cfg.id_weight)
            losses["images"] = [("original", y0), (f"reconstruction t={t_fixed}", recon)]
            return losses
        g = torch.Generator().manual_seed(key + 1)
        if t_fixed is None:
            edits = [self.edits[int(i)] for i in torch.randint(0, len(self.edits), (len(captions),), generator=g)]
        else:
            edits = [self.edits[i % len(self.edits)] for i in range(len(captions))]
        targets = [compose_target(c, e) for c, e in zip(captions, edits)]
        x_t = self._noised(z0, t, noise, ref_cond)
        out = unet(x_t, t, encoder_hidden_states=self.text(targets)).sample
        y_gen = d.decode(m.vae, d.x0(out, x_t, t))
        with torch.no_grad():
            if cfg.direction_ref == "pred":
                ref = self._bare()(x_t, t, encoder_hidden_states=ref_cond).sample
                y_ref = d.decode(m.vae, d.x0(ref, x_t, t))
                f0, f_ref = self.clip.image(torch.cat([y0, y_ref])).chunk(2)
            else:
                y_ref, f0 = y0, self.clip.image(y0)
                f_ref = f0
            t_tar, t_ref = self.clip.text(targets), self.clip.text(list(captions))
        losses = direction_loss(self.clip.image(y_gen), f0, f_ref, t_tar, t_ref, cfg.lambda1, cfg.lambda2)
        losses["images"] = [("original", y0), (f"reference t={t_fixed}", y_ref),
                            ("edit: " + " | ".join(edits), y_gen)]
        losses["prompts"] = targets
        return losses

    @torch.no_grad()
    def sample(self, step: int) -> Path:
        n = min(self.cfg.samples, len(self.data))
        batch = collate([self.data[i] for i in range(n)])
        with self.acc.autocast():
            res = self.compute(batch, key=self.cfg.seed * 7919 + 13, unet=self._bare(), t_fixed=self.cfg.sample_t)
        path = self.out / "samples" / f"step_{step:06d}.png"
        if "prompts" in res:
            path.with_suffix(".txt").parent.mkdir(parents=True, exist_ok=True)
            path.with_suffix(".txt").write_text("\n".join(res["prompts"]) + "\n")
        return write_grid(path, res["images"], caption=RANDOM_WEIGHTS_LABEL if self.models.random_weights else None)

    # --- the loop ----------------------------------------------------------------------
    def run(self) -> dict:
        cfg, acc = self.cfg, self.acc
        self.out.mkdir(parents=True, exist_ok=True)
        start = self._resume()
        sampler = StepBatches(len(self.data), cfg.batch_size, cfg.seed, start=start * cfg.grad_accum,
                              rank=acc.process_index, world=acc.num_processes, flip=cfg.flip,
                              fixed=cfg.overfit_batch)
        loader = torch.utils.data.DataLoader(self.data, batch_sampler=sampler, collate_fn=collate,
                                             num_workers=cfg.workers, persistent_workers=False)
        log = LossLog(self.out / "logs", start) if acc.is_main_process else None
        from tqdm import tqdm

        bar = tqdm(total=cfg.max_steps, initial=start, unit="step", disable=not (self.progress and acc.is_main_process),
                   dynamic_ncols=True, desc=RANDOM_WEIGHTS_LABEL if self.models.random_weights else None)
        step, micro, history = start, start * cfg.grad_accum, []
        sums: dict[str, float] = {}
        began = time.perf_counter()
        if start >= cfg.max_steps:
            self.say(f"already at step {start} of {cfg.max_steps}: nothing to train.")
        for batch in _batches(loader if start < cfg.max_steps else []):
            key = (cfg.seed * 1_000_003 + (0 if cfg.overfit_batch else micro)) * 64 + acc.process_index
            with acc.accumulate(self.unet):
                with acc.autocast():
                    losses = self.compute(batch, key)
                acc.backward(losses["loss"])
                if acc.sync_gradients and cfg.max_grad_norm > 0:
                    acc.clip_grad_norm_(self.unet.parameters(), cfg.max_grad_norm)
                self.opt.step()
                self.sched.step()
                self.opt.zero_grad(set_to_none=True)
            micro += 1
            for k, v in losses.items():
                if isinstance(v, torch.Tensor):
                    sums[k] = sums.get(k, 0.0) + acc.reduce(v.detach().float(), "mean").item() / cfg.grad_accum
            if not acc.sync_gradients:
                continue
            step += 1
            if not all(math.isfinite(v) for v in sums.values()):
                raise UserError(f"the loss became {sums['loss']} at step {step}; lower --lr or use bf16/fp32.")
            history.append(dict(sums))
            if log is not None:
                log(step, {**sums, "lr": self.sched.get_last_lr()[0]})
            bar.update(1)
            bar.set_postfix({k: f"{v:.4f}" for k, v in sums.items()}, refresh=False)
            sums = {}
            if acc.is_main_process and cfg.sample_every and (step % cfg.sample_every == 0 or step == cfg.max_steps):
                self.sample(step)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                self._checkpoint(step)
            if step >= cfg.max_steps:
                break
        bar.close()
        seconds = time.perf_counter() - began
        if log is not None:
            log.close()
        acc.wait_for_everyone()
        summary = self._finish(step, start, history, seconds)
        acc.end_training()
        return summary

    def _finish(self, step: int, start: int, history: list[dict], seconds: float) -> dict:
        cfg, acc = self.cfg, self.acc
        window = history[-20:]
        final = {k: sum(h[k] for h in window) / len(window) for k in window[0]} if window else {}
        trained = step - start
        summary = {"out": str(self.out), "steps": step, "trained_steps": trained, "seconds": round(seconds, 3),
                   "steps_per_second": round(trained / seconds, 4) if seconds > 0 and trained else None,
                   "final_losses": final, "first_losses": history[0] if history else {},
                   "trainable_parameters": self.n_trainable, "main_process": acc.is_main_process,
                   "random_weights": self.models.random_weights}
        if not acc.is_main_process:
            return summary
        unet = self._bare()
        if cfg.full:
            unet.save_pretrained(str(self.out / "unet"))
            weights = "full UNet (unet/)"
        else:
            with _diffusers_quiet():  # save_lora_adapter's own `.to(dtype=None)` warns
                unet.save_lora_adapter(str(self.out), adapter_name=cfg.role, weight_name=LORA_WEIGHTS)
            weights = (f"LoRA rank {cfg.lora_rank}, alpha {cfg.lora_alpha or cfg.lora_rank}, on "
                       f"{', '.join(cfg.lora_targets)} ({LORA_WEIGHTS})")
        import diffusers
        import peft

        scorer = getattr(self.scorer, "source", "") or getattr(self.scorer, "name", type(self.scorer).__name__)
        card = {
            "role": cfg.role, "base_model": cfg.model, "random_weights": self.models.random_weights,
            "weights": weights, "trainable_parameters": self.n_trainable,
            "data": {"folder": str(Path(cfg.data).expanduser().resolve()), "images": len(self.data),
                     "resolution": cfg.resolution, "distinct_captions": len(set(self.data.captions)),
                     "edits": len(self.edits) or None},
            "steps": step, "world_size": acc.num_processes, "mixed_precision": acc.mixed_precision,
            "final_losses": final, "final_losses_window": len(window),
            "embedder" if cfg.role == "identity" else "clip": scorer,
            "objective": ("L1 + ArcFace cosine distance of a one-pass x0 prediction (Eq. 5)" if cfg.role == "identity"
                          else "directional CLIP loss of a one-pass x0 prediction (Eq. 6)"),
            "seconds": round(seconds, 1), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__, "peft": peft.__version__},
            "settings": dataclasses.asdict(cfg),
        }
        write_card(self.out, card)
        self.say(f"wrote {weights} and model_card.json to {self.out}")
        return summary


def train(cfg: TrainConfig, *, embedder: FaceEmbedder | None = None, clip: Clip | None = None,
          say: Callable[[str], None] = print, progress: bool = True) -> dict:
    """Fine-tune ε1 or ε2 as configured; returns a summary (steps, losses, speed)."""
    return Trainer(cfg, embedder=embedder, clip=clip, say=say, progress=progress).run()
