"""Bring the engine's frames into Resolve as a new, non-destructive version.

In: Resolve, the media pool, the timeline, the result paths (`frame_%06d.<ext>`, numbered by the
engine), the record frame and length, and names. Out: the TimelineItem on a new top video
track, verified by re-reading the track — AppendToTimeline never overwrites and silently
drops a placement that overlaps, so its return value proves nothing. `Placement.undo()`
removes everything this module added (item, track, clips, the bin if it made it), on the
Edit page.
"""

from __future__ import annotations

import os
import re
from typing import Any

from plugin_resolve.errors import PlacementFailed

BIN_NAME = "ipfacediff"
_NUMBER = re.compile(r"^(.*?)(\d+)(\.[A-Za-z]+)$")


def sequence_clip_info(paths: list[str]) -> dict[str, Any]:
    """ImportMedia clipInfo for a numbered sequence: {"FilePath": ".../frame_%06d.tif", StartIndex, EndIndex}."""
    if not paths:
        raise PlacementFailed("The engine returned no frames to import.")
    first, last = (_NUMBER.match(os.path.basename(p)) for p in (paths[0], paths[-1]))
    if not first or not last:
        raise PlacementFailed(f"The engine's files are not a numbered sequence ({paths[0]}).")
    width = len(first[2])
    pattern = os.path.join(os.path.dirname(paths[0]), f"{first[1]}%0{width}d{first[3]}")
    return {"FilePath": pattern, "StartIndex": int(first[2]), "EndIndex": int(last[2])}


class Placement:
    def __init__(self, resolve: Any, media_pool: Any, timeline: Any):
        self.resolve, self.pool, self.timeline = resolve, media_pool, timeline
        self.bin = None
        self.bin_created = False
        self.clips: list[Any] = []
        self.items: list[Any] = []
        self.track: int | None = None

    # --- media pool ------------------------------------------------------------------------
    def ensure_bin(self) -> Any:
        if self.bin is None:
            root = self.pool.GetRootFolder()
            self.bin = next((f for f in root.GetSubFolderList() or [] if f.GetName() == BIN_NAME), None)
            if self.bin is None:
                self.bin = self.pool.AddSubFolder(root, BIN_NAME)
                if not self.bin:
                    raise PlacementFailed(f"Resolve would not create the media-pool bin '{BIN_NAME}'.")
                self.bin_created = True
        return self.bin

    def import_media(self, what: list[Any], name: str, frames: int | None = None) -> Any:
        """Import into the ipfacediff bin (ImportMedia lands in the current folder, so switch and switch back)."""
        folder = self.ensure_bin()
        previous = self.pool.GetCurrentFolder()
        self.pool.SetCurrentFolder(folder)
        try:
            got = list(self.pool.ImportMedia(what) or [])
        finally:
            if previous is not None:
                self.pool.SetCurrentFolder(previous)
        self.clips += got
        if len(got) != 1:
            raise PlacementFailed(f"Resolve imported {len(got)} clips instead of one from {what[0]}.")
        clip = got[0]
        if frames is not None:
            have = str(clip.GetClipProperty("Frames") or "")
            if have.isdigit() and int(have) != frames:
                raise PlacementFailed(f"Resolve imported {have} frames of the {frames}-frame result.")
        clip.SetName(name)
        return clip

    # --- timeline --------------------------------------------------------------------------
    def place_on_new_track(self, clip: Any, record_frame: int, count: int, track_name: str) -> Any:
        before = int(self.timeline.GetTrackCount("video") or 0)
        if not self.timeline.AddTrack("video"):
            raise PlacementFailed("Resolve would not add a video track.")
        self.track = int(self.timeline.GetTrackCount("video") or 0)
        if self.track != before + 1:
            self.track = None if self.track == before else self.track
            raise PlacementFailed("Resolve did not add exactly one video track.")
        self.timeline.SetTrackName("video", self.track, track_name)
        self.pool.AppendToTimeline([{"mediaPoolItem": clip, "startFrame": 0, "endFrame": count,  # endFrame exclusive
                                     "mediaType": 1, "trackIndex": self.track, "recordFrame": record_frame}])
        items = list(self.timeline.GetItemListInTrack("video", self.track) or [])
        self.items = items
        ok = [i for i in items if int(i.GetStart()) == record_frame and int(i.GetDuration()) == count
              and _same(i.GetMediaPoolItem(), clip)]
        if len(items) != 1 or not ok:
            raise PlacementFailed(f"Resolve did not place the result at record frame {record_frame} for {count} "
                                  f"frames on V{self.track} (the track holds {len(items)} item(s)).")
        return ok[0]

    def undo(self) -> None:
        """Remove what this placement added, each step checked rather than trusted to a side effect
        (MediaPool.DeleteClips is not documented to remove a clip's timeline uses). Timeline work runs on
        the Edit page: Timeline.DeleteClips fails on the Fairlight page. Every step runs even when an
        earlier one fails; a track still holding something is left in place rather than deleted."""
        page = self.resolve.GetCurrentPage() if self.items or self.track is not None else "edit"
        if page != "edit":
            self.resolve.OpenPage("edit")
        steps = []
        if self.items:
            steps.append(lambda: self.timeline.DeleteClips(self.items, False))
        if self.track is not None:
            steps.append(lambda: not self.timeline.GetItemListInTrack("video", self.track)
                         and self.timeline.DeleteTrack("video", self.track))
        if self.clips:
            steps.append(lambda: self.pool.DeleteClips(self.clips))
        if self.bin_created:
            steps.append(lambda: not (self.bin.GetClipList() or self.bin.GetSubFolderList())
                         and self.pool.DeleteFolders([self.bin]))
        for step in steps:
            try:
                step()
            except Exception:  # cleanup must go on; the caller reports the original error
                pass
        if page and page != "edit":
            self.resolve.OpenPage(page)
        self.items, self.track, self.clips, self.bin_created = [], None, [], False


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    ids = [x.GetUniqueId() or x.GetMediaId() for x in (a, b)]  # hasattr() is useless on Resolve objects
    return bool(ids[0]) and ids[0] == ids[1]
