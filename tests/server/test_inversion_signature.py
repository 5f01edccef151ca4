"""What a cached inversion is keyed on comes from `Settings` field metadata and the hook layout:
a setting marked `inversion` changes the signature, an edit-only setting does not, and a cache
file whose features were captured at other injection layers is a miss (dropped, inverted again),
not a missing layer in the middle of an edit answered as `internal`."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from engine import inversion_file
from engine.inversion_file import HOOK_LAYOUT
from engine.editor import _signature
from engine.settings import Settings, inversion_fields
from server.cache import InversionCache

FAST = Settings(steps=2, face_mode="full")
OTHER = {"steps": 3, "source_prompt": "a face", "seed": 1, "keyframe_interval": 4, "keyframe_strategy": "random",
         "keyframes": (0, 2), "keyframe_window": 4, "keyframe_anchors": 1, "attn_injection": 0.25,
         "conv_injection": 0.25, "source_features": "recompute"}
EDIT_ONLY = {"guidance_scale": 3.0, "negative_prompt": "blur", "face_color_match": 0.5, "qc_every": 0,
             "batch_size": 2}


def test_the_signature_follows_exactly_the_settings_marked_inversion(tiny_editor):
    m = tiny_editor.models
    base = _signature(m, 5, (64, 64), Settings())
    assert set(OTHER) == set(inversion_fields()) and HOOK_LAYOUT in base
    for name, value in OTHER.items():
        assert _signature(m, 5, (64, 64), Settings().replace(**{name: value})) != base, name
    for name, value in EDIT_ONLY.items():
        assert name not in inversion_fields()
        assert _signature(m, 5, (64, 64), Settings().replace(**{name: value})) == base, name


def _set_hooks(path, layout) -> None:
    """Rewrite the file's recorded hook layout, as an engine with other injection layers would have saved it."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header["__metadata__"]["hooks"] = json.dumps(layout)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    path.write_bytes(struct.pack("<Q", len(head)) + head + raw[8 + n:])


def test_a_cached_inversion_of_other_injection_layers_is_a_miss(tiny_editor, tmp_path):
    rng = np.random.default_rng(3)
    inv = tiny_editor.invert([rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)], FAST)
    restore = lambda path: inversion_file.load(path, tiny_editor.models, FAST)  # noqa: E731
    writer = InversionCache(1 << 30, tmp_path, 1 << 30)
    writer.put("k", inv)
    writer.close()
    assert InversionCache(1 << 30, tmp_path, 1 << 30).get("k", restore) is not None  # the same layout loads

    _set_hooks(tmp_path / "k.safetensors", [["up_blocks.3.attentions."], "up_blocks.2.resnets.0.conv2"])
    cache = InversionCache(1 << 30, tmp_path, 1 << 30)
    assert cache.get("k", restore) is None
    assert cache.info()["disk_errors"] == 1 and not (tmp_path / "k.safetensors").exists()
    path = tmp_path / "one_layer_less.safetensors"
    inversion_file.save(inv, path)
    _set_hooks(path, [list(HOOK_LAYOUT[0][:-1]), HOOK_LAYOUT[1]])
    with pytest.raises(ValueError, match="other injection layers"):
        restore(path)
