"""Colour management with OpenColorIO: a clip's colourspace <-> the model's display-referred sRGB.

In: a `Clip` as read, the input and output colourspace names (None: sRGB for integer samples,
scene-linear Rec.709 for float ones such as EXR), the output format, and the OCIO config
(`$OCIO`, else the built-in ACES studio config; `OCIO=ocio://cg-config-latest` picks another
built-in one). Out: `ModelFrames` — `frames` for the editor (the source's own samples when no
conversion is needed, else float32 sRGB-encoded Rec.709, unclipped) and `restore(edited)`, a
`Clip` in the output colourspace and sample type (half stays half, 16-bit stays 16-bit, where
the format holds it; gray stays gray) with the source's alpha.

Pixels the edit did not change, and pixels the model cannot represent (a channel outside 0..1
in its space, e.g. highlights above 1.0), come back exactly as the source had them (through
the input -> output transform when the two spaces differ); changed pixels go back through
the exact inverse of the forward transform.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field

import numpy as np
import PyOpenColorIO as ocio

from engine.errors import UserError
from engine.io.clip import Clip

BUILTIN_CONFIG = "ocio://studio-config-latest"
# first name the config knows wins (names and aliases of the ACES configs, then older configs')
MODEL_SPACE = ("sRGB Encoded Rec.709 (sRGB)", "srgb_tx", "Utility - sRGB - Texture", "sRGB - Texture")
SCENE_LINEAR = ("Linear Rec.709 (sRGB)", "lin_rec709", "Utility - Linear - sRGB", "Linear - sRGB")
REC709_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
# sample types each output format stores, and what other sample types become there
_HOLDS = {"png": ("uint8", "uint16"), "tif": ("uint8", "uint16", "float32"), "exr": ("float16", "float32")}
_OTHERWISE = {"png": "uint16", "tif": "float32", "exr": "float32"}


def load_config() -> ocio.Config:
    """The OCIO config named by $OCIO (a file or an `ocio://` built-in), else the studio config."""
    source = os.environ.get("OCIO") or BUILTIN_CONFIG
    try:
        return ocio.Config.CreateFromFile(source)
    except (ocio.Exception, ocio.ExceptionMissingFile) as error:
        raise UserError(f"the OCIO config '{source}' could not be read ({str(error).splitlines()[0]}).") from None


def output_dtype(source_dtype: str, fmt: str) -> np.dtype:
    """The sample type written for a source sample type in format `fmt` (png, tif or exr)."""
    fmt = {"tiff": "tif"}.get(fmt.lower().lstrip("."), fmt.lower().lstrip("."))
    if fmt not in _HOLDS:
        raise UserError(f"The output format {fmt!r} is not supported; use png, tif or exr.")
    return np.dtype(source_dtype if source_dtype in _HOLDS[fmt] else _OTHERWISE[fmt])


def space_name(config: ocio.Config, wish: str | None, candidates: tuple[str, ...], flag: str) -> str:
    """The canonical name of colourspace `wish` (or of the first candidate the config knows)."""
    for name in (wish,) if wish else candidates:
        space = config.getColorSpace(name)
        if space is not None:
            if space.isData():
                raise UserError(f"{flag} '{name}' holds data, not colour; name a colourspace.")
            return space.getName()
    known = list(config.getColorSpaceNames())
    if not wish:
        need = f"pass {flag}" if flag.startswith("--") else f"{flag} needs one of them"
        raise UserError(f"the OCIO config '{config.getName()}' has none of {', '.join(candidates)}; {need}.")
    close = difflib.get_close_matches(wish, known, 4, 0.3)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else f"it has {len(known)} others."
    raise UserError(f"{flag} '{wish}' is not a colourspace of the OCIO config '{config.getName()}'; {hint}")


def _processor(config: ocio.Config, source: str, target: str):
    if source == target:
        return None
    return config.getProcessor(source, target).getOptimizedCPUProcessor(ocio.OPTIMIZATION_LOSSLESS)


def _apply(processor, rgb: np.ndarray) -> np.ndarray:
    """float32 copy of H×W×3 (or N×3) `rgb` through `processor` (None: unchanged)."""
    out = np.array(rgb, np.float32, order="C", copy=True)
    if processor is not None:
        processor.applyRGB(out)
    return out


def _unit(samples: np.ndarray) -> np.ndarray:
    """Integer samples -> float32 0..1; float samples as float32."""
    if samples.dtype.kind == "u":
        return samples.astype(np.float32) / np.float32(np.iinfo(samples.dtype).max)
    return samples.astype(np.float32, copy=False)


def _cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """float32 0..1-scaled values -> `dtype` (integers rounded and clipped)."""
    if dtype.kind == "u":
        top = np.iinfo(dtype).max
        return np.clip(np.rint(np.nan_to_num(values) * top), 0, top).astype(dtype)
    return values.astype(dtype)


@dataclass
class ModelFrames:
    """A clip's frames as the editor should see them, and the way back (see the module doc)."""

    clip: Clip
    frames: list[np.ndarray]
    input_space: str
    output_space: str
    dtype: np.dtype
    _to_output: object = field(default=None, repr=False)  # input -> output space
    _from_model: object = field(default=None, repr=False)  # model -> output space

    @classmethod
    def prepare(cls, clip: Clip, input_space: str | None = None, output_space: str | None = None,
                fmt: str = "png") -> ModelFrames:
        if clip.gray and clip.alpha is not None:
            raise UserError("the input is a gray image with alpha, which cannot be written back as such; "
                            "convert it to RGBA first.")
        source = np.dtype(clip.source_dtype or clip.dtype)
        dtype = output_dtype(source.name, fmt)
        config = load_config()
        model = space_name(config, None, MODEL_SPACE, "the model's sRGB")
        given = space_name(config, input_space, MODEL_SPACE if source.kind == "u" else SCENE_LINEAR,
                           "--input-colorspace")
        wanted = space_name(config, output_space, MODEL_SPACE if dtype.kind == "u" else SCENE_LINEAR,
                            "--output-colorspace")
        forward = _processor(config, given, model)
        frames = clip.frames if forward is None else [_apply(forward, _unit(f)) for f in clip.frames]
        return cls(clip, frames, given, wanted, dtype, _processor(config, given, wanted),
                   _processor(config, model, wanted))

    def restore(self, edited: list[np.ndarray]) -> Clip:
        """The edited frames in the output colourspace and sample type, as a Clip with the source's alpha."""
        if len(edited) != len(self.frames):
            raise UserError(f"restore needs {len(self.frames)} edited frames; got {len(edited)}.")
        frames = [self._restore_one(s, m, e) for s, m, e in zip(self.clip.frames, self.frames, edited)]
        alpha = None if self.clip.alpha is None else [_cast(_unit(a), self.dtype) for a in self.clip.alpha]
        return Clip(frames=frames, first=self.clip.first, fps=self.clip.fps, alpha=alpha,
                    source_dtype=self.dtype.name, gray=self.clip.gray, naming=self.clip.naming)

    def _restore_one(self, source: np.ndarray, model: np.ndarray, edited: np.ndarray) -> np.ndarray:
        kept = source.dtype == self.dtype and self.input_space == self.output_space
        out = source.copy() if kept else _cast(_apply(self._to_output, _unit(source)), self.dtype)
        if self.clip.gray:
            out = np.ascontiguousarray(out[:, :, 0])
        changed = (edited != model).any(axis=-1)
        if model.dtype.kind == "f":  # the model saw these pixels clipped to 0..1: keep the source's
            changed &= ((model >= 0) & (model <= 1)).all(axis=-1)
        if changed.any():
            values = _apply(self._from_model, _unit(edited[changed]))
            out[changed] = _cast(values @ REC709_LUMA if self.clip.gray else values, self.dtype)
        return out
