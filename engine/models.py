"""Model loading: the Stable Diffusion components and the two UNet roles ε1 and ε2.

In: a model source (preset name, hub id, local diffusers folder, or one `.safetensors` /
`.ckpt` file), optional identity/direction sources (a LoRA adapter folder or file, or a
full UNet folder), device and dtype wishes. Out: `Models`, holding the tokenizer, text
encoder, VAE, scheduler config and the two `UNetRole`s. When both roles are adapters of
one base (or the base itself), one UNet is kept in memory and adapters are switched.
Loading prints nothing of diffusers', transformers' or peft's own but errors (`quiet_libraries`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffusers.utils import logging as diffusers_logging
from transformers.utils import logging as transformers_logging

from engine.errors import UserError

LIBRARY_LOGS = (diffusers_logging, transformers_logging)


@contextmanager
def quiet_libraries():
    """Within: diffusers and transformers print only errors, without loading bars, and peft's
    "Already found a peft_config" (two adapters on one base, as meant) is not shown — notices a
    user cannot act on (torchvision missing, loading progress). Their settings are restored after."""
    saved = [(log, log.get_verbosity(), log.is_progress_bar_enabled()) for log in LIBRARY_LOGS]
    for log in LIBRARY_LOGS:
        log.set_verbosity_error()
        log.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Already found a `peft_config`")
            yield
    finally:
        for log, level, bar in saved:
            log.set_verbosity(level)
            if bar:
                log.enable_progress_bar()


with quiet_libraries():  # importing diffusers' pipelines makes transformers print torchvision notices
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import SingleFileComponentError

    from engine.presets import PRESETS, RANDOM_WEIGHTS_MARKER, build_preset

DEFAULT_MODEL = "stabilityai/stable-diffusion-2-1-base"
IDENTITY, DIRECTION = "identity", "direction"


@dataclass
class UNetRole:
    """One UNet role: a module and the peft adapter that must be active for it (None =
    the module's own weights, with any adapters disabled)."""

    name: str
    unet: UNet2DConditionModel
    adapter: str | None = None
    source: str = "base"

    def activate(self) -> UNet2DConditionModel:
        if getattr(self.unet, "peft_config", None):
            if self.adapter is None:
                self.unet.disable_adapters()
            else:
                self.unet.enable_adapters()
                self.unet.set_adapter(self.adapter)
        return self.unet


@dataclass
class Models:
    tokenizer: Any
    text_encoder: Any
    vae: Any
    scheduler_config: Any
    identity: UNetRole
    direction: UNetRole
    device: torch.device
    dtype: torch.dtype
    vae_dtype: torch.dtype
    source: str
    random_weights: bool
    _prompt_cache: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    @property
    def identity_string(self) -> str:
        label = " (RANDOM WEIGHTS)" if self.random_weights else ""
        return f"{self.source}{label} | ε1={self.identity.source} | ε2={self.direction.source}"

    @functools.cached_property
    def weights_digest(self) -> str:
        """What an inversion depends on beyond the model's name: dtype, scheduler config, and the
        shape and first 16 values of every parameter of the VAE, the text encoder and the ε1 UNet
        (adapters included). A few KiB read, yet different when weights change under one path."""
        # "_" keys are diffusers' bookkeeping, some listed in set order (varies per process)
        schedule = {k: v for k, v in dict(self.scheduler_config).items() if not k.startswith("_")}
        h = hashlib.sha256(json.dumps([str(self.dtype), str(self.vae_dtype), schedule], sort_keys=True,
                                      default=str).encode())
        for module in (self.vae, self.text_encoder, self.identity.unet):
            for name, p in module.named_parameters():
                head = p.detach().reshape(-1)[:16].float().cpu()
                h.update(f"{name}{tuple(p.shape)}".encode())
                h.update(head.numpy().tobytes())
        return h.hexdigest()[:16]

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def native_resolution(self) -> int:
        """The side the model was trained at: UNet `sample_size` × VAE scale factor (512 for
        SD 2.1-base, 768 for SD 2.1, 64 for the tiny presets)."""
        return int(self.identity.unet.config.sample_size) * self.vae_scale_factor

    @property
    def unet_multiple(self) -> int:
        """Frame sides must be multiples of this (VAE factor × UNet downsampling)."""
        return self.vae_scale_factor * 2 ** (len(self.identity.unet.config.block_out_channels) - 1)

    def unets(self) -> list[UNet2DConditionModel]:
        return list({id(r.unet): r.unet for r in (self.identity, self.direction)}.values())

    @torch.no_grad()
    def encode_prompt(self, prompt: str) -> torch.Tensor:
        """Text embedding [1, L, D] of one prompt (cached per prompt for this model set)."""
        if prompt not in self._prompt_cache:
            ids = self.tokenizer(prompt, padding="max_length", max_length=self.tokenizer.model_max_length,
                                 truncation=True, return_tensors="pt").input_ids
            self._prompt_cache[prompt] = self.text_encoder(ids.to(self.device))[0].to(self.dtype)
        return self._prompt_cache[prompt]


def pick_device(wish: str = "auto") -> torch.device:
    if wish != "auto":
        try:
            return torch.device(wish)
        except RuntimeError:
            raise UserError(f"unknown device '{wish}'.") from None
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device, wish: str = "auto") -> torch.dtype:
    if wish != "auto":
        names = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16,
                 "float16": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
        if wish not in names:
            raise UserError(f"unknown dtype '{wish}'; use fp32, fp16 or bf16.")
        return names[wish]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def _load_components(source: str, dtype: torch.dtype, config: str | None) -> tuple[dict[str, Any], bool]:
    """Pipeline components from a preset, a single checkpoint file, or a hub id/folder."""
    if source in PRESETS:
        return build_preset(source), True
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")
    path = Path(source).expanduser()
    try:
        if path.is_file():
            pipe = _load_single_file(path, dtype, config, offline)
        else:
            if not path.exists() and (source.startswith((".", "/", "~")) or source.count("/") != 1):
                raise UserError(f"model '{source}' is neither a preset, a folder, a checkpoint file nor a hub id.")
            pipe = StableDiffusionPipeline.from_pretrained(
                str(path) if path.exists() else source, dtype=dtype, local_files_only=offline,
                safety_checker=None, requires_safety_checker=False)
    except UserError:
        raise
    except (OSError, ValueError, EnvironmentError) as exc:
        where = "it is not downloaded and the hub is offline" if offline else "it could not be read"
        raise UserError(f"could not load model '{source}': {where} ({str(exc).splitlines()[0]}).") from None
    names = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
    marked = path.is_dir() and (path / RANDOM_WEIGHTS_MARKER).exists()
    return {n: getattr(pipe, n) for n in names}, marked


def _load_single_file(path: Path, dtype: torch.dtype, config: str | None, offline: bool) -> StableDiffusionPipeline:
    """A pipeline from one original-layout (LDM) checkpoint. `config` (a diffusers folder,
    weights not needed, or a hub id) says how to read it; without one diffusers infers a
    hub config from the keys, which needs the hub (or its cache)."""
    if path.suffix not in (".safetensors", ".ckpt"):
        raise UserError(f"{path} is not a .safetensors or .ckpt checkpoint.")
    if config is not None:
        folder = Path(config).expanduser()
        if folder.is_dir():
            config = str(folder)
        elif config.startswith((".", "/", "~")) or config.count("/") != 1:
            raise UserError(f"model config '{config}' is neither a diffusers model folder nor a hub id.")
    try:
        return StableDiffusionPipeline.from_single_file(
            str(path), config=config, dtype=dtype, local_files_only=offline or config is not None,
            safety_checker=None, requires_safety_checker=False)
    except (OSError, ValueError, KeyError, RuntimeError, SingleFileComponentError) as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0].strip().rstrip(".")[:200]
        if "Unable to load weights from checkpoint file" in detail:
            raise UserError(f"{path} is not a readable checkpoint (corrupt, truncated or not "
                            f".safetensors/.ckpt data).") from None
        if config is None:
            why = "no model config was given and the hub is offline" if offline else "no model config could be inferred"
        else:
            why = f"it does not match the model config '{config}'"
        raise UserError(f"could not load the checkpoint {path}: {why} ({detail}).") from None


def _is_adapter(path: Path) -> bool:
    if path.is_file():
        return path.suffix == ".safetensors"
    return (path / "adapter_config.json").exists() or any(path.glob("*lora*.safetensors"))


def _adapter_weights(folder: Path) -> str:
    """The weights file of an adapter folder (diffusers names it pytorch_lora_weights.safetensors)."""
    files = sorted(folder.glob("*lora*.safetensors")) or sorted(folder.glob("*.safetensors"))
    if not files:
        raise UserError(f"the adapter folder {folder} holds no .safetensors weights.")
    return files[0].name


def _trained_base(path: Path) -> str | None:
    """The base model a fine-tune says it was trained on: `base_model` of its model card
    (engine.training), else `base_model_name_or_path` of its peft adapter config."""
    folder = path if path.is_dir() else path.parent
    for file, key in (("model_card.json", "base_model"), ("adapter_config.json", "base_model_name_or_path")):
        if (folder / file).is_file():
            try:
                claim = json.loads((folder / file).read_text()).get(key)
            except (OSError, ValueError, AttributeError):
                raise UserError(f"{folder / file} is not a readable JSON object.") from None
            if claim:
                return str(claim)
    return None


def _names_of(source: str) -> set[str]:
    """What a base model may be called: as given, its resolved path, and for a folder in the
    Hugging Face cache (`models--org--name/snapshots/…`) its hub id."""
    names = {source}
    path = Path(source).expanduser()
    if path.exists():
        names.add(str(path.resolve()))
        cached = next((p.name for p in path.resolve().parents if p.name.startswith("models--")), None)
        if cached:
            names.add(cached.removeprefix("models--").replace("--", "/"))
    return names


def _check_base(name: str, spec: str, claim: str | None, source: str) -> None:
    """Refuse a fine-tune whose recorded base is not the loaded base (no record: nothing to check)."""
    if claim is not None and not _names_of(claim) & _names_of(source):
        flag = "--preset" if claim in PRESETS else "--model"
        raise UserError(f"the {name} model '{spec}' was trained on '{claim}', not on the loaded base '{source}'; "
                        f"load it with {flag} {claim}.")


def _attach_role(name: str, spec: str | None, base: UNet2DConditionModel,
                 device: torch.device, dtype: torch.dtype, source: str) -> UNetRole:
    """A role from `spec`: None (the base), a LoRA adapter (folder or file) loaded into the
    base UNet under the role's name, or a full UNet folder loaded as its own module. A
    fine-tune that records another base than `source` is refused."""
    if spec is None:
        return UNetRole(name, base)
    path = Path(spec).expanduser()
    if not path.exists():
        raise UserError(f"{name} model '{spec}' does not exist.")
    _check_base(name, spec, _trained_base(path), source)
    if _is_adapter(path):
        folder, weights = (path.parent, path.name) if path.is_file() else (path, _adapter_weights(path))
        try:
            base.load_lora_adapter(str(folder), weight_name=weights, adapter_name=name, prefix=None)
        except (ValueError, RuntimeError, KeyError) as exc:
            raise UserError(f"the {name} adapter '{spec}' does not match the base model "
                            f"({str(exc).splitlines()[0][:200]}).") from None
        return UNetRole(name, base, adapter=name, source=f"lora:{path}")
    folder = path / "unet" if (path / "unet" / "config.json").exists() else path
    if not (folder / "config.json").exists():
        raise UserError(f"{name} model '{spec}' is neither a LoRA adapter nor a UNet folder.")
    unet = UNet2DConditionModel.from_pretrained(str(folder), dtype=dtype)
    if unet.config.cross_attention_dim != base.config.cross_attention_dim:
        raise UserError(f"the {name} UNet '{spec}' does not match the base model (cross-attention width).")
    return UNetRole(name, unet, source=f"unet:{path}")


def _place(module: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """Move to device, casting only when the dtype differs (a no-op cast warns in diffusers)."""
    module.to(device)
    if any(p.dtype != dtype for p in module.parameters()):
        module.to(dtype=dtype)
    return module.eval()


def load_models(source: str = DEFAULT_MODEL, *, identity: str | None = None, direction: str | None = None,
                device: str = "auto", dtype: str = "auto", config: str | None = None) -> Models:
    """Load everything an edit needs. `config` is the diffusers config (hub id or folder)
    used to interpret a single checkpoint file."""
    with quiet_libraries():
        return _load(source, identity, direction, device, dtype, config)


def _load(source: str, identity: str | None, direction: str | None, device: str, dtype: str,
          config: str | None) -> Models:
    dev = pick_device(device)
    dt = pick_dtype(dev, dtype)
    parts, random_weights = _load_components(source, dt, config)
    base = _place(parts["unet"], dev, dt)
    vae = parts["vae"]
    vae_dtype = torch.float32 if (dt == torch.float16 and vae.config.get("force_upcast", False)) else dt
    _place(vae, dev, vae_dtype)
    text_encoder = _place(parts["text_encoder"], dev, dt)
    roles = [_attach_role(n, s, base, dev, dt, source) for n, s in ((IDENTITY, identity), (DIRECTION, direction))]
    for role in roles:
        _place(role.unet, dev, dt)
    return Models(tokenizer=parts["tokenizer"], text_encoder=text_encoder, vae=vae,
                  scheduler_config=parts["scheduler"].config, identity=roles[0], direction=roles[1],
                  device=dev, dtype=dt, vae_dtype=vae_dtype, source=source, random_weights=random_weights)
