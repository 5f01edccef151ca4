"""Find what to edit on the current timeline.

In: a Resolve Timeline and an optional video track number (1 = V1). Out: `Target` — the
inclusive range of absolute record frames, the track, and the clips covering the range.
The range is the timeline's In/Out marks (read by plugin_resolve.timecode); without marks,
the clip under the playhead. The range must lie on clips without a gap. Tracks this plugin
made (named "ipfacediff v…") are never chosen automatically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from plugin_resolve.errors import NoTarget
from plugin_resolve.timecode import Clock

TRACK_PREFIX = "ipfacediff v"
TIMECODE_PAGES = ("cut", "edit", "color", "fairlight", "deliver")  # GetCurrentTimecode (README)


@dataclass
class Target:
    first: int  # absolute record frame, inclusive
    last: int  # absolute record frame, inclusive
    track: int  # video track index, 1-based
    items: tuple[Any, ...]  # the TimelineItems on `track` that cover the range, in order
    from_marks: bool
    spans: list = field(init=False, repr=False)  # (unique id, start, end) of `items` when found

    def __post_init__(self) -> None:
        self.spans = sorted(map(_where, self.items))

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    @property
    def item(self) -> Any:
        """The item at the first frame of the range."""
        return self.items[0]

    def check_unchanged(self, timeline: Any) -> None:
        """Before placing: the clips the frames came from are still where they were."""
        now = _overlapping(timeline, self.track, self.first, self.last)
        if sorted(map(_where, now)) != self.spans:
            raise NoTarget(f"The clips on V{self.track} at frames {self.first}-{self.last} changed during the run "
                           "(moved, trimmed or deleted), so the edited frames no longer match them; nothing was "
                           "placed. Run ipfacediff again.")


def _where(item: Any) -> tuple[str, int, int]:
    return str(item.GetUniqueId()), int(item.GetStart()), int(item.GetEnd())


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


def marked_range(timeline: Any, clock: Clock) -> tuple[int, int] | None:
    """The In/Out marks as absolute record frames (inclusive), or None when not both are set."""
    marks = timeline.GetMarkInOut() or {}
    video = marks.get("video") if isinstance(marks.get("video"), dict) else marks
    if not isinstance(video, dict) or "in" not in video or "out" not in video:
        return None
    first, last = clock.mark(video["in"]), clock.mark(video["out"])
    if last < first:
        raise NoTarget(f"The Out mark ({last}) is before the In mark ({first}); set them again.")
    return first, last


def playhead(timeline: Any, clock: Clock, page: str | None) -> int | None:
    tc = timeline.GetCurrentTimecode()
    if not tc:
        if page not in TIMECODE_PAGES:
            raise NoTarget(f"Resolve reports the playhead only on the Cut, Edit, Color, Fairlight and Deliver pages, "
                           f"not on the {str(page or 'current').capitalize()} page: switch to the Edit page (or mark "
                           "In/Out) and run ipfacediff again.")
        return None
    try:
        return clock.timecode(tc)
    except ValueError:
        return None


def _covering(timeline: Any, track: int, first: int, last: int) -> tuple[Any, ...]:
    """The items on `track` that cover first..last without a gap; NoTarget names the first gap."""
    items = sorted(_overlapping(timeline, track, first, last), key=lambda i: int(i.GetStart()))
    frame = first
    for item in items:
        if int(item.GetStart()) > frame:
            break
        frame = max(frame, int(item.GetEnd()))
    if frame <= last:
        gap_end = min([int(i.GetStart()) - 1 for i in items if int(i.GetStart()) > frame] + [last])
        raise NoTarget(f"The range {first}-{last} has no clip on V{track} at frames {frame}-{gap_end}; a gap would "
                       "be rendered black and edited as part of the shot. Move the marks onto the clips, or edit "
                       "each clip on its own.")
    return tuple(items)


def find_target(timeline: Any, track: int | None = None, page: str | None = "edit") -> Target:
    """The range and track to edit (raises NoTarget with what the editor should do)."""
    clock = Clock.of(timeline)
    count = int(timeline.GetTrackCount("video") or 0)
    if track is not None and not 1 <= track <= count:
        raise NoTarget(f"There is no video track V{track}; this timeline has V1 to V{count}.")
    candidates = [track] if track is not None else [t for t in range(count, 0, -1) if not is_ours(timeline, t)]
    where = f"V{track}" if track is not None else "any video track"
    marks = marked_range(timeline, clock)
    if marks is not None:
        first, last = marks
        for t in candidates:
            if track is not None or _overlapping(timeline, t, first, last):
                return Target(first, last, t, _covering(timeline, t, first, last), True)
        raise NoTarget(f"The marked range {first}-{last} holds no clip on {where}; move the marks over a clip.")
    frame = playhead(timeline, clock, page)
    if frame is not None:
        for t in candidates:
            if track is None and not timeline.GetIsTrackEnabled("video", t):
                continue
            item = item_at(timeline, t, frame)
            if item is not None:
                return Target(int(item.GetStart()), int(item.GetEnd()) - 1, t, (item,), False)
    raise NoTarget(f"There is nothing to edit: the timeline has no In/Out marks and no clip is under the "
                   f"playhead on {where}. Mark a range with I and O, or park the playhead on a clip.")
