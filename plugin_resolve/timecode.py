"""Resolve's marks, timecodes and frame rates -> absolute timeline frames: the one place.

In: a Resolve Timeline (GetStartFrame, GetStartTimecode and the `timelineFrameRate` and
`timelineDropFrameTimecode` settings), mark values from GetMarkInOut, timecodes from
GetCurrentTimecode. Out: `Clock.of(timeline)`, whose `mark(v)` and `timecode(tc)` give frames on
the scale of GetStartFrame() / TimelineItem.GetStart() / AppendToTimeline's recordFrame / the
render settings' MarkIn and MarkOut. The rules and their sources are in docs/resolve.md
("Frames"); `Clock.of` checks them against the timeline before anything is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from plugin_resolve.errors import ResolveEditError

_TC = re.compile(r"^\s*(\d+)[:;.](\d{2})[:;.](\d{2})([:;.])(\d{2,3})\s*$")


def parse_rate(rate: Any, drop_setting: Any = None) -> tuple[float, bool]:
    """(frames per second, drop frame) from `timelineFrameRate` (a number, "29.97" or "29.97 DF")
    and `timelineDropFrameTimecode` ("0"/"1"); drop frame exists only at 29.97 and 59.94."""
    raw = str(rate if rate is not None else "").strip().upper()
    try:
        fps = float(raw.replace("DF", "").strip() or "24")
    except ValueError:
        fps = 24.0
    drop = raw.endswith("DF") or str(drop_setting).strip() in ("1", "True", "true")
    return fps, drop and _drop_rate(fps)


def _drop_rate(fps: float) -> bool:
    return round(fps) in (30, 60) and abs(fps - round(fps)) > 1e-3


def to_frame(timecode: str, fps: float, drop: bool = False) -> int:
    """Frame count of a timecode since 00:00:00:00 (SMPTE drop-frame counting at 29.97/59.94 when
    `drop`, or when the last separator is ';')."""
    m = _TC.match(str(timecode))
    if not m:
        raise ValueError(f"not a timecode: {timecode!r}")
    h, mi, s, sep, f = int(m[1]), int(m[2]), int(m[3]), m[4], int(m[5])
    nominal = int(round(fps))
    frames = ((h * 60 + mi) * 60 + s) * nominal + f
    if (drop or sep == ";") and _drop_rate(fps):
        minutes = h * 60 + mi
        frames -= (2 if nominal == 30 else 4) * (minutes - minutes // 10)
    return frames


@dataclass(frozen=True)
class Clock:
    start: int  # Timeline.GetStartFrame()
    fps: float
    drop: bool

    @classmethod
    def of(cls, timeline: Any) -> "Clock":
        """The timeline's clock, checked: its start timecode must read as its start frame."""
        fps, drop = parse_rate(timeline.GetSetting("timelineFrameRate"),
                               timeline.GetSetting("timelineDropFrameTimecode"))
        clock = cls(int(timeline.GetStartFrame()), fps, drop)
        start_tc = str(timeline.GetStartTimecode() or "")
        try:
            agrees = not start_tc or clock.timecode(start_tc) == clock.start
        except ValueError:
            agrees = False
        if not agrees:
            kind = "drop-frame" if drop else "non-drop"
            raise ResolveEditError(
                f"The timeline '{timeline.GetName()}' starts at frame {clock.start}, but its start timecode "
                f"{start_tc!r} reads as another frame at {fps:g} fps {kind}, so ipfacediff cannot place frames on "
                "it reliably; check Project Settings > Timeline frame rate and drop frame. Nothing was changed.")
        return clock

    def mark(self, value: Any) -> int:
        """An In/Out value from GetMarkInOut (relative to the timeline start) as an absolute frame."""
        return self.start + int(value)

    def timecode(self, tc: str) -> int:
        """A timecode (GetCurrentTimecode, GetStartTimecode) as an absolute frame."""
        return to_frame(tc, self.fps, self.drop)

    def render(self, value: Any) -> int:
        """A render job's MarkIn or MarkOut (SetRenderSettings, GetRenderJobList) as an absolute frame:
        those are absolute already, unlike GetMarkInOut's."""
        return int(value)
