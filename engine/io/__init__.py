"""Frame I/O: read videos, image sequences and stills into a `Clip`; write numbered frames atomically.

`read_frames(source, frame_range=None) -> Clip`, `probe(source) -> ClipInfo`, `MEDIA_EXTS` (the file
extensions `read_frames` reads as a video or a still),
`write_frames(frames, out_dir, *, start=0, fmt="png", video=None, fps=24.0, overwrite=False,
name="frame_%06d") -> list[Path]`,
`check_output(out_dir, names, *, video=None, files=(), overwrite=False, inputs=(), flag="--overwrite")`,
`mark_random_weights(out_dir, random_weights)` (RANDOM_WEIGHTS.txt beside a random-weight model's frames),
`frame_names(count, *, start=0, fmt="png", name="frame_%06d") -> list[str]`;
`engine.io.colour.ModelFrames` (OpenColorIO: a Clip's colourspace <-> the model's sRGB, and
back with alpha and sample type), `engine.io.sequence.edited_name` (`shot.%04d` -> `shot_edit.%04d`).
Bad input raises `engine.errors.UserError` with one sentence.
"""

from engine.io.clip import Clip, ClipInfo
from engine.io.read import MEDIA_EXTS, probe, read_frames
from engine.io.write import check_output, frame_names, mark_random_weights, write_frames

__all__ = ["MEDIA_EXTS", "Clip", "ClipInfo", "check_output", "frame_names", "mark_random_weights", "probe", "read_frames", "write_frames"]
