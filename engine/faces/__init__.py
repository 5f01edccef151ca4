"""Faces: detection, tracking, smoothed crops and paste-back at full resolution.

`prepare(frames, settings) -> FacePlan` (crops at model resolution, per-frame status and
boxes), `paste(original_frames, edited_crops, plan, settings) -> frames`. The editor runs
prepare → core edit on `plan.clips()` → paste → `engine.metrics.qc`.
Backends: see `engine.faces.detect` (MTCNN by default, offline; insightface when its pack
is on disk), named in `engine.face_backends`.
"""

from engine.faces.detect import Face, load_detector
from engine.faces.paste import paste, paste_crop
from engine.faces.plan import FacePlan, prepare

__all__ = ["Face", "FacePlan", "load_detector", "paste", "paste_crop", "prepare"]
