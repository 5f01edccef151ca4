"""What every task of a farm job needs besides its paths: the job spec, and the job folder.

In: the `farm bundle` command's choices (prompt, settings, model, output format and
colourspaces, the shot's frame range, chunk size). Out: `FarmSpec` (JSON, embedded in the
job template so each task reads the same bytes) and `JobFolder`: the names of the files the
steps share in the job folder (keyframe data, face plan, QC outputs, the `done` marker).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from engine.errors import UserError
from engine.farm.split import chunks, cut_frames
from engine.keyframes import plan_keyframes
from engine.settings import Settings

VERSION = 1


@dataclass(frozen=True)
class FarmSpec:
    prompt: str
    settings: dict
    """`Settings.to_dict()` of the edit."""
    first: int
    """The shot's first frame number (sequence numbers, or 0 for a video)."""
    count: int
    """Frames in the shot; frames are read and written as first .. first + count - 1."""
    chunk_size: int = 48
    model: str | None = None
    preset: str | None = None
    model_config: str | None = None
    identity_model: str | None = None
    direction_model: str | None = None
    format: str = "png"
    name: str = "frame_%06d"
    """Output file names: a pattern with one frame-number field (`edit --name`; the bundle
    defaults it as `edit` does, from the source's naming)."""
    input_colorspace: str | None = None
    output_colorspace: str | None = None
    version: int = VERSION

    @cached_property
    def chunks(self) -> list[tuple[int, int]]:
        """[start, stop) clip indices of each propagate task: about `chunk_size` frames each, the
        boundaries on keyframe segment starts (`engine.farm.split.chunks`), laid out for a face
        in every frame (a shot whose face leaves the frame still edits exactly; its chunks
        may rebuild a few more keyframes)."""
        return chunks(self.count, self.chunk_size, cut_frames(plan_keyframes(self.count, self.edit_settings())))

    def edit_settings(self) -> Settings:
        return Settings.from_dict(self.settings)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)

    @classmethod
    def read(cls, path: str | Path) -> "FarmSpec":
        try:
            values = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read the farm job spec {path}: {exc}.") from None
        known = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(values, dict) or values.get("version") != VERSION or set(values) - known:
            raise UserError(f"{path} is not a version-{VERSION} ipfacediff farm job spec.")
        return cls(**values)


class JobFolder:
    """The shared job folder of one shot's farm job, and the files the steps share in it."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.keyframes = self.root / "keyframes.safetensors"
        self.face_plan = self.root / "face_plan.pkl"
        self.crops = self.root / "crops.safetensors"
        self.stats = self.root / "keyframes_stats.json"
        self.qc = self.root / "qc.json"
        self.report = self.root / "qc.png"
        self.contact_sheet = self.root / "contact_sheet.png"
        self.preview = self.root / "preview.mp4"
        self.done = self.root / "done"

    def chunk_stats(self, chunk: int) -> Path:
        return self.root / f"chunk_{chunk:05d}_stats.json"
