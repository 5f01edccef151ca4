"""The timelines of the Resolve double: timecodes, tracks, placed items, marks, the playhead, pixels.

In: Timeline and TimelineItem calls (tracks, GetItemListInTrack, marks, timecodes, DeleteClips),
`Timeline.append(clipInfo)` for MediaPool.AppendToTimeline and `Timeline.composite(frame)` for a
render. Out: Resolve's answers with the measured quirks (docs/reference/api-limitations.md):

- a placement never overwrites: one overlapping an item on its track (or on a locked or missing
  track) is silently dropped; the returned item then has an empty unique id and is not on the
  timeline. clipInfo endFrame is exclusive. GetItemListInTrack is ordered by start.
- GetMarkInOut/SetMarkInOut values are relative to the timeline start (type stubs).
- a timeline starts at its start timecode ("01:00:00:00" unless SetStartTimecode says otherwise)
  counted at the project rate (`tc_to_frame`, `frame_to_tc`; drop frame from
  `timelineDropFrameTimecode`); timecodes use ':' even when drop frame. GetCurrentTimecode is
  empty off the Cut/Edit/Color/Fairlight/Deliver pages.
- DeleteClips fails on the Fairlight page (a refusal is logged in `Timeline.refused`).
- pixels: the composite of the enabled video tracks at the timeline resolution, each item's
  `gain` (a test hook: a grade) applied; `resize` scales it nearest-neighbour.
"""

from __future__ import annotations

import itertools
import re
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from fake_media_pool import MediaPoolItem
    from fake_resolve import Project

TIMECODE_PAGES = ("cut", "edit", "color", "fairlight", "deliver")
_ids = itertools.count(1)


def unique_id() -> str:
    """A fresh id as Resolve spells them, in creation order (every object of the double has one)."""
    return f"{next(_ids):08x}-{uuid.uuid4().hex[:8]}"


def _rate(fps: str, drop: str) -> tuple[int, int]:
    """(nominal frames per second, frames dropped per minute: 0, 2 at 29.97 DF, 4 at 59.94 DF)."""
    exact = float(fps)
    nominal = int(round(exact))
    return nominal, (nominal // 15 if drop == "1" and nominal in (30, 60) and exact != nominal else 0)


def tc_to_frame(tc: str, fps: str, drop: str) -> int:
    nominal, d = _rate(fps, drop)
    h, m, s, f = (int(x) for x in re.split(r"[:;]", tc))
    minutes = h * 60 + m
    return (minutes * 60 + s) * nominal + f - d * (minutes - minutes // 10)


def frame_to_tc(frame: int, fps: str, drop: str) -> str:
    nominal, d = _rate(fps, drop)
    if d:  # SMPTE drop frame: put the skipped labels back, then count as non-drop
        per10, per1 = nominal * 600 - 9 * d, nominal * 60 - d
        tens, rest = divmod(frame, per10)
        frame += 9 * d * tens + (d * ((rest - d) // per1) if rest > d else 0)
    return (f"{frame // (3600 * nominal):02d}:{frame // (60 * nominal) % 60:02d}:{frame // nominal % 60:02d}:"
            f"{frame % nominal:02d}")


class Track:
    def __init__(self, name: str):
        self.name, self.enabled, self.locked, self.items = name, True, False, []


class TimelineItem:
    def __init__(self, timeline: "Timeline", clip: MediaPoolItem, start: int, duration: int, left: int,
                 placed: bool = True):
        self.timeline, self.clip, self.start, self.duration, self.left = timeline, clip, start, duration, left
        self.id = unique_id() if placed else ""
        self.name = clip.name
        self.enabled = True
        self.gain = 1.0  # test hook: a grade, applied when rendering
        self.props: dict[str, Any] = {"Pan": 0.0, "Tilt": 0.0, "ZoomX": 1.0, "ZoomY": 1.0, "Opacity": 100.0}
        self.color = ""

    def GetName(self): return self.name
    def GetStart(self, subframe=False): return self.start
    def GetEnd(self, subframe=False): return self.start + self.duration  # exclusive
    def GetDuration(self, subframe=False): return self.duration
    def GetLeftOffset(self, subframe=False): return self.left
    def GetRightOffset(self, subframe=False): return self.clip.frames - self.left - self.duration
    def GetSourceStartFrame(self): return self.left
    def GetSourceEndFrame(self): return self.left + self.duration
    def GetMediaPoolItem(self): return self.clip
    def GetUniqueId(self): return self.id
    def GetClipEnabled(self): return self.enabled
    def GetClipColor(self): return self.color

    def SetName(self, name):
        self.name = name
        return True

    def SetClipEnabled(self, on):
        self.enabled = bool(on)
        return True

    def SetClipColor(self, name):
        self.color = name
        return True

    def GetProperty(self, key=None):
        return dict(self.props) if key is None else self.props.get(key)

    def SetProperty(self, key, value):
        if key not in self.props:
            return False
        self.props[key] = value
        return True

    def GetTrackTypeAndIndex(self):
        for kind, tracks in self.timeline.tracks.items():
            for index, track in enumerate(tracks, 1):
                if self in track.items:
                    return [kind, index]
        return None


class Timeline:
    def __init__(self, project: Project, name: str, start_timecode: str = "01:00:00:00"):
        self.project, self.name = project, name
        self.tracks = {"video": [Track("Video 1")], "audio": [Track("Audio 1")], "subtitle": []}
        self.marks: dict[str, dict[str, int]] = {}
        self.settings: dict[str, str] = {}
        self.refused: list[str] = []  # test hook: calls the page gate refused
        self.id = unique_id()
        self.start_frame = self.playhead = self._frame(start_timecode)

    def GetName(self): return self.name
    def GetStartFrame(self): return self.start_frame
    def GetStartTimecode(self): return self._timecode(self.start_frame)
    def GetUniqueId(self): return self.id

    def SetStartTimecode(self, tc):
        self.start_frame = self.playhead = self._frame(tc)
        return True

    def GetEndFrame(self):
        ends = [i.GetEnd() for ts in self.tracks.values() for t in ts for i in t.items]
        return max(ends, default=self.start_frame)

    def SetName(self, name):
        self.name = name
        return True

    def GetSetting(self, name=None):
        merged = {**self.project.settings, **self.settings}
        return merged if not name else merged.get(name, "")

    def SetSetting(self, name, value):
        self.settings[name] = str(value)
        return True

    # tracks -------------------------------------------------------------------------------
    def _track(self, kind, index) -> Track | None:
        tracks = self.tracks.get(kind, [])
        return tracks[index - 1] if isinstance(index, int) and 1 <= index <= len(tracks) else None

    def _set_track(self, kind, index, field, value) -> bool:
        t = self._track(kind, index)
        if t is None:
            return False
        setattr(t, field, value)
        return True

    def GetTrackCount(self, kind): return len(self.tracks.get(kind, []))

    def AddTrack(self, kind, options=None):
        if kind not in self.tracks:
            return False
        tracks = self.tracks[kind]
        track = Track(f"{kind.capitalize()} {len(tracks) + 1}")
        index = options.get("index") if isinstance(options, dict) else None
        if isinstance(index, int) and 1 <= index <= len(tracks):
            tracks.insert(index - 1, track)
        else:
            tracks.append(track)
        return True

    def DeleteTrack(self, kind, index):
        if self._track(kind, index) is None:
            return False
        del self.tracks[kind][index - 1]
        return True

    def GetTrackName(self, kind, index): return getattr(self._track(kind, index), "name", "")
    def GetIsTrackEnabled(self, kind, index): return bool(getattr(self._track(kind, index), "enabled", False))
    def GetIsTrackLocked(self, kind, index): return bool(getattr(self._track(kind, index), "locked", False))
    def SetTrackName(self, kind, index, name): return self._set_track(kind, index, "name", name)
    def SetTrackEnable(self, kind, index, on): return self._set_track(kind, index, "enabled", bool(on))
    def SetTrackLock(self, kind, index, on): return self._set_track(kind, index, "locked", bool(on))

    def GetItemListInTrack(self, kind, index):
        t = self._track(kind, index)
        return None if t is None else sorted(t.items, key=lambda i: i.start)

    def DeleteClips(self, items, ripple=False):
        if self.project.app.page == "fairlight":
            self.refused.append("DeleteClips")
            return False  # measured: a page gate, not a lock
        targets = set(id(i) for i in items)
        for tracks in self.tracks.values():
            for t in tracks:
                t.items = [i for i in t.items if id(i) not in targets]
        return True

    # marks and playhead -------------------------------------------------------------------
    def GetMarkInOut(self):
        return {k: dict(v) for k, v in self.marks.items()}

    def SetMarkInOut(self, mark_in, mark_out, kind="all"):
        for k in ("video", "audio") if kind == "all" else (kind,):
            self.marks[k] = {"in": int(mark_in), "out": int(mark_out)}
        return True

    def ClearMarkInOut(self, kind="all"):
        for k in ("video", "audio") if kind == "all" else (kind,):
            self.marks.pop(k, None)
        return True

    def _rate(self) -> tuple[str, str]:
        merged = {**self.project.settings, **self.settings}
        return merged["timelineFrameRate"], merged["timelineDropFrameTimecode"]

    def _frame(self, tc: str) -> int:
        return tc_to_frame(tc, *self._rate())

    def _timecode(self, frame: int) -> str:
        return frame_to_tc(frame, *self._rate())

    def GetCurrentTimecode(self):
        return self._timecode(self.playhead) if self.project.app.page in TIMECODE_PAGES else ""

    def SetCurrentTimecode(self, tc):
        if self.project.app.page not in TIMECODE_PAGES:
            return False
        self.playhead = self._frame(tc)
        return True

    def GetCurrentVideoItem(self):
        for t in reversed(self.tracks["video"]):
            for i in t.items:
                if t.enabled and i.start <= self.playhead < i.GetEnd():
                    return i
        return None

    # placement and pixels -----------------------------------------------------------------
    def append(self, info: dict, fault: str | None = None) -> TimelineItem:
        clip = info.get("mediaPoolItem")
        start, end = int(info.get("startFrame", 0)), int(info.get("endFrame", clip.frames if clip else 0))
        index = int(info.get("trackIndex", 1))
        track = self._track("video", index)
        record = info.get("recordFrame")
        if record is None:
            record = max([i.GetEnd() for i in track.items] if track else [], default=self.start_frame)
        record = int(record)
        duration = end - start - (fault == "short")  # endFrame is exclusive
        ghost = TimelineItem(self, clip, record, max(duration, 0), start, placed=False) if clip else None
        if (fault == "drop" or clip is None or track is None or track.locked or duration <= 0 or start < 0
                or end > clip.frames and not clip.still):
            return ghost
        if any(i.start < record + duration and record < i.GetEnd() for i in track.items):
            return ghost  # never overwrites: the later placement silently loses
        item = TimelineItem(self, clip, record, duration, start)
        track.items.append(item)
        return item

    def composite(self, frame: int) -> np.ndarray:
        """The timeline's picture at record `frame` and the timeline resolution: the topmost enabled
        clip, graded and scaled to the timeline size; black if none."""
        merged = {**self.project.settings, **self.settings}
        w, h = int(merged["timelineResolutionWidth"]), int(merged["timelineResolutionHeight"])
        for track in reversed(self.tracks["video"]):
            if not track.enabled:
                continue
            for item in track.items:
                if item.enabled and item.start <= frame < item.GetEnd():
                    rgb = np.clip(item.clip.frame(item.left + frame - item.start) * item.gain, 0.0, 1.0)
                    return resize(rgb, w, h)
        return np.zeros((h, w, 3), np.float32)


def resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour scale to width x height (0 keeps that side)."""
    h, w = rgb.shape[:2]
    width, height = width or w, height or h
    if (height, width) == (h, w):
        return rgb.copy()
    return rgb[np.arange(height) * h // height][:, np.arange(width) * w // width].copy()
