"""The face detectors and identity embedders by name: the one place each backend is named.

In: a backend name (`Settings.face_detector` / `face_embedder`, a CLI flag, a protocol value)
and the folder of an insightface model pack (`Settings.face_models`; None: the default
places). Out: the allowed names (Settings validates against them, the CLI offers them as
choices, an unknown name's error lists them) and the loaded backend.

Adding a detector: write its class (a `engine.faces.detect.Detector` whose constructor takes
the models folder) and add one line `"name": "module:Class"` to `DETECTORS`; nothing else
names it. This module imports only the standard library, because `engine.settings` needs the
names on the Resolve side (its own Python, without numpy or cv2); a backend's module is
imported only when it is loaded.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import UserError

DEFAULT_PACK = "buffalo_l"


def insightface_pack(models: str | None = None, pack: str = DEFAULT_PACK) -> Path | None:
    """The insightface model pack folder on disk, or None. `models` may be the pack folder
    itself, a folder holding `<pack>/`, or an insightface root holding `models/<pack>/`."""
    candidates = []
    if models:
        base = Path(models).expanduser()
        candidates += [base, base / pack, base / "models" / pack]
    root = Path(os.environ.get("INSIGHTFACE_HOME", "~/.insightface")).expanduser()
    candidates.append(root / "models" / pack)
    for c in candidates:
        if c.is_dir() and any(c.glob("*.onnx")):
            return c
    return None


def insightface_ready(models: str | None = None) -> bool:
    return (insightface_pack(models) is not None and importlib.util.find_spec("insightface") is not None
            and importlib.util.find_spec("onnxruntime") is not None)


@dataclass(frozen=True)
class Backends:
    """One kind of face model: `table` maps each name to the `module:callable` that builds it
    from the models folder; `auto` is `with_pack` when an insightface pack and its runtime are
    here, else `without_pack`."""

    kind: str
    table: dict[str, str]
    with_pack: str
    without_pack: str

    def names(self) -> tuple[str, ...]:
        return ("auto", *self.table)

    def load(self, name: str = "auto", models: str | None = None) -> Any:
        if name == "auto":
            name = self.with_pack if insightface_ready(models) else self.without_pack
        if name not in self.table:
            raise UserError(f"unknown {self.kind} '{name}'; choose one of: {', '.join(self.names())}.")
        module, _, attribute = self.table[name].partition(":")
        return getattr(importlib.import_module(module), attribute)(models)


DETECTORS = Backends("face detector", {
    "mtcnn": "engine.faces.detect:MTCNNDetector",
    "insightface": "engine.faces.detect:InsightFaceDetector",
    "dlib": "engine.faces.detect:DlibDetector",
}, with_pack="insightface", without_pack="mtcnn")

EMBEDDERS = Backends("face embedder", {
    "facenet": "engine.metrics.embed:FaceNetEmbedder",
    "dlib": "engine.metrics.embed:DlibEmbedder",
    "arcface": "engine.metrics.embed:ArcFaceEmbedder",
}, with_pack="arcface", without_pack="facenet")
