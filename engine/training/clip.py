"""CLIP image/text encoders f_I, f_T for the directional loss (Eq. 6), from transformers.

In: a hub id or folder (`openai/clip-vit-large-patch14`, the default; loaded offline when
HF_HUB_OFFLINE=1, so it must be in the cache) or `tiny` (random, built in code, with the
engine's character-level tokenizer). Out: `Clip`, a frozen module with differentiable
`image(images in [-1, 1])` and cached `text(prompts)`, both L2-normalised. Images are
resized to the vision tower's side and normalised with CLIP's mean/std in torch (the
transformers image processor works on numpy and would cut the gradient).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

from engine.errors import UserError
from engine.training.config import DEFAULT_CLIP

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _pooled(out) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else out.pooler_output


class Clip(nn.Module):
    def __init__(self, model: CLIPModel, tokenizer, name: str = ""):
        super().__init__()
        self.model, self.tokenizer, self.name = model.eval(), tokenizer, name
        self.side = model.config.vision_config.image_size
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)
        self._text: dict[str, torch.Tensor] = {}

    def image(self, images: torch.Tensor) -> torch.Tensor:
        x = (images.float() + 1) / 2
        if x.shape[-2:] != (self.side, self.side):
            x = F.interpolate(x, size=(self.side, self.side), mode="bicubic", align_corners=False,
                              antialias=x.shape[-1] > self.side)
        x = ((x - self.mean) / self.std).to(next(self.model.parameters()).dtype)
        return F.normalize(_pooled(self.model.get_image_features(pixel_values=x)).float(), dim=-1)

    @torch.no_grad()
    def text(self, prompts: list[str]) -> torch.Tensor:
        missing = sorted({p for p in prompts if p not in self._text})
        if missing:
            tok = self.tokenizer(missing, padding="max_length", truncation=True, return_tensors="pt",
                                 max_length=self.model.config.text_config.max_position_embeddings)
            device = next(self.model.parameters()).device
            feats = _pooled(self.model.get_text_features(input_ids=tok.input_ids.to(device),
                                                         attention_mask=tok.attention_mask.to(device)))
            for p, f in zip(missing, F.normalize(feats.float(), dim=-1)):
                self._text[p] = f
        return torch.stack([self._text[p] for p in prompts])


def tiny_clip(seed: int = 0) -> Clip:
    """A random CLIP with 32-wide towers and a 32² vision input, for tests."""
    from engine.presets import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    small = dict(hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tokenizer), max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1, **small),
        vision_config=dict(image_size=32, patch_size=8, **small), projection_dim=32)
    with torch.random.fork_rng(devices=[]):  # the same weights every time; the global RNG untouched
        torch.manual_seed(seed)
        model = CLIPModel(config)
    return Clip(model, tokenizer, name="tiny")


def load_clip(spec: str = DEFAULT_CLIP) -> Clip:
    if spec == "tiny":
        return tiny_clip()
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")
    path = Path(spec).expanduser()
    if not path.exists() and (spec.startswith((".", "/", "~")) or spec.count("/") != 1):
        raise UserError(f"CLIP model '{spec}' is neither a folder nor a hub id.")
    source = str(path) if path.exists() else spec
    try:
        model = CLIPModel.from_pretrained(source, local_files_only=offline)
        tokenizer = CLIPTokenizer.from_pretrained(source, local_files_only=offline)
    except (OSError, ValueError) as exc:
        where = "it is not downloaded and the hub is offline" if offline else "it could not be read"
        raise UserError(f"could not load CLIP '{spec}': {where} ({str(exc).splitlines()[0][:200]}).") from None
    return Clip(model, tokenizer, name=spec)
