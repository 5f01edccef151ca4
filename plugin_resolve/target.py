"""Find what to edit on the current timeline.

In: a Resolve Timeline and an optional video track number (1 = V1). Out: `Target` — the
inclusive range of absolute record frames, the track, and the clip on that track (if any).
The range is the timeline's In/Out marks; without marks, the clip under the playhead.
Tracks this plugin made (named "ipfacediff v…") are never chosen automatically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plugin_resolve import timecode
from plugin_resolve.errors import NoTarget

TRACK_PREFIX = "ipfacediff v"


@dataclass
class Target:
    first: int  # absolute record frame, inclusive
    last: int  # absolute record frame, inclusive
    track: int  # video track index, 1-based
    item: Any  # the TimelineItem on `track` at `first`, or None
    from_marks: bool

    @property
    def count(self) -> int:
        return self.last - self.first + 1


def video_items(timeline: Any, track: int) -> list[Any]:
    return list(timeline.GetItemListInTrack("video", track) or [])


def is_ours(timeline: Any, track: int) -> bool:
    return str(timeline.GetTrackName("video", track) or "").startswith(TRACK_PREFIX)


def item_at(timeline: Any, track: int, frame: int) -> Any:
    """The item on `track` covering record frame `frame` (GetEnd() is exclusive), or None."""
    for item in video_items(timeline, track):
        if int(item.GetStart()) <= frame < int(item.GetEnd()):
            return item
    return None


def _overlapping(timeline: Any, track: int, first: int, last: int) -> list[Any]:
    return [i for i in video_items(timeline, track) if int(i.GetStart()) <= last and int(i.GetEnd()) > first]


def marked_range(timeline: Any) -> tuple[int, int] | None:
    """The In/Out marks as absolute record frames (inclusive), or None when not both are set.

    GetMarkInOut reports marks set in the UI relative to the timeline start, while a script's
    SetMarkInOut stores whatever number it was given; a mark below the start frame is therefore
    relative and gets the start added (SetRenderSettings needs absolute frames)."""
    marks = timeline.GetMarkInOut() or {}
    video = marks.get("video") if isinstance(marks.get("video"), dict) else marks
    if not isinstance(video, dict) or "in" not in video or "out" not in video:
        return None
    start = int(timeline.GetStartFrame())
    first, last = (int(v) + start if int(v) < start else int(v) for v in (video["in"], video["out"]))
    if last < first:
        raise NoTarget(f"The Out mark ({last}) is before the In mark ({first}); set them again.")
    return first, last


def playhead(timeline: Any) -> int | None:
    tc = timeline.GetCurrentTimecode()
    if not tc:
        return None
    fps, drop = timecode.parse_rate(timeline.GetSetting("timelineFrameRate"))
    try:
        return timecode.to_frame(tc, fps, drop)
    except ValueError:
        return None


def find_target(timeline: Any, track: int | None = None) -> Target:
    """The range and track to edit (raises NoTarget with what the editor should do)."""
    count = int(timeline.GetTrackCount("video") or 0)
    if track is not None and not 1 <= track <= count:
        raise NoTarget(f"There is no video track V{track}; this timeline has V1 to V{count}.")
    candidates = [track] if track is not None else [t for t in range(count, 0, -1) if not is_ours(timeline, t)]
    where = f"V{track}" if track is not None else "any video track"
    marks = marked_range(timeline)
    if marks is not None:
        first, last = marks
        for t in candidates:
            if track is not None or _overlapping(timeline, t, first, last):
                return Target(first, last, t, item_at(timeline, t, first), True)
        raise NoTarget(f"The marked range {first}-{last} holds no clip on {where}; move the marks over a clip.")
    frame = playhead(timeline)
    if frame is not None:
        for t in candidates:
            if track is None and not timeline.GetIsTrackEnabled("video", t):
                continue
            item = item_at(timeline, t, frame)
            if item is not None:
                return Target(int(item.GetStart()), int(item.GetEnd()) - 1, t, item, False)
    raise NoTarget(f"There is nothing to edit: the timeline has no In/Out marks and no clip is under the "
                   f"playhead on {where}. Mark a range with I and O, or park the playhead on a clip.")
