"""Timecode and frame-rate strings from Resolve -> absolute frame numbers.

In: Resolve's `timelineFrameRate` setting ("24", "23.976", "29.97 DF") and a timecode
("01:00:00:12", drop-frame "00:01:00;02"). Out: (fps, drop_frame) and integer frame numbers
on the same scale as Timeline.GetStartFrame() / TimelineItem.GetStart().
"""

from __future__ import annotations

import re

_TC = re.compile(r"^\s*(\d+)[:;.](\d{2})[:;.](\d{2})([:;.])(\d{2,3})\s*$")


def parse_rate(text: object) -> tuple[float, bool]:
    """(frames per second, drop frame) from a Resolve frame-rate setting; 24 when unreadable."""
    raw = str(text or "").strip().upper()
    drop = raw.endswith("DF")
    try:
        fps = float(raw.replace("DF", "").strip() or "24")
    except ValueError:
        fps = 24.0
    return fps, drop


def to_frame(timecode: str, fps: float, drop: bool = False) -> int:
    """Frame number of a timecode (SMPTE drop-frame counting for 29.97/59.94 when `drop`, or
    when the timecode's last separator is ';')."""
    m = _TC.match(str(timecode))
    if not m:
        raise ValueError(f"not a timecode: {timecode!r}")
    h, mi, s, sep, f = int(m[1]), int(m[2]), int(m[3]), m[4], int(m[5])
    nominal = int(round(fps))
    frames = ((h * 60 + mi) * 60 + s) * nominal + f
    if (drop or sep == ";") and nominal in (30, 60):
        dropped = 2 if nominal == 30 else 4
        minutes = h * 60 + mi
        frames -= dropped * (minutes - minutes // 10)
    return frames
