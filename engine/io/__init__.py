"""Frame I/O: read videos, image sequences and stills into a `Clip`; write numbered frames atomically.

`read_frames(source, frame_range=None) -> Clip`, `probe(source) -> ClipInfo`,
`write_frames(frames, out_dir, *, start=0, fmt="png", video=None, fps=24.0) -> list[Path]`.
Bad input raises `engine.errors.UserError` with one sentence.
"""

from engine.io.clip import Clip, ClipInfo
from engine.io.read import probe, read_frames
from engine.io.write import write_frames

__all__ = ["Clip", "ClipInfo", "probe", "read_frames", "write_frames"]
