"""The media pool of the Resolve double: folders, clips on disk, ImportMedia, timelines made and placed.

In: MediaPool, Folder and MediaPoolItem calls (ImportMedia, DeleteClips/DeleteFolders,
CreateEmptyTimeline, AppendToTimeline, clip properties). Out: Resolve's answers with the
measured quirks (docs/reference/api-limitations.md):

- ImportMedia lands in the current folder; an image sequence is imported with
  {"FilePath": "name_%06d.tif", "StartIndex", "EndIndex"} and shows "name_[a-b].tif".
- MediaPool.DeleteClips does not touch timelines (removing a clip's timeline uses is not
  documented).
- AppendToTimeline places onto the current timeline, through `Timeline.append` (never overwrites).

Test hook (not Resolve API): `MediaPool.append_fault` ("drop": placements are silently dropped;
"short": they land one frame short).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.io.images import read_image
from fake_timeline import Timeline, unique_id

if TYPE_CHECKING:
    from fake_resolve import Project

class Folder:
    def __init__(self, name: str, parent: "Folder | None" = None):
        self.name, self.parent, self.id = name, parent, unique_id()
        self.clips: list[MediaPoolItem] = []
        self.subfolders: list[Folder] = []

    def GetName(self): return self.name
    def GetClipList(self): return list(self.clips)
    def GetSubFolderList(self): return list(self.subfolders)
    def GetUniqueId(self): return self.id
    def GetIsFolderStale(self): return False

    def walk(self):
        yield self
        for f in self.subfolders:
            yield from f.walk()


_PRINTF = re.compile(r"%0?(\d*)d")


class MediaPoolItem:
    """A still or an image sequence on disk: `files[i]` is source frame i (0-based)."""

    def __init__(self, pool: "MediaPool", name: str, files: list[Path], display_path: str, still: bool):
        self.pool, self.name, self.files, self.display_path, self.still = pool, name, files, display_path, still
        self.id = unique_id()
        self.props: dict[str, str] = {}
        self._shape: tuple[int, ...] | None = None

    @property
    def frames(self) -> int:
        return len(self.files)

    def frame(self, index: int) -> np.ndarray:
        """Source frame `index` as float32 RGB 0..1."""
        image = read_image(self.files[0 if self.still else index])
        if image.ndim == 2:
            image = np.dstack([image] * 3)
        image = image[..., :3]
        if image.dtype.kind == "u":
            return image.astype(np.float32) / np.iinfo(image.dtype).max
        return image.astype(np.float32)

    def GetName(self): return self.name
    def GetMediaId(self): return f"media-{self.id}"
    def GetUniqueId(self): return self.id

    def SetName(self, name):
        self.name = name
        return True

    def GetClipProperty(self, key=None):
        if self._shape is None:
            self._shape = read_image(self.files[0]).shape
        h, w = self._shape[:2]
        props = {"Clip Name": self.name, "File Name": os.path.basename(self.display_path),
                 "File Path": self.display_path, "Frames": str(self.frames), "FPS": "24",
                 "Type": "Still" if self.still else "Video", "Resolution": f"{w}x{h}",
                 "Start": "0", "End": str(self.frames - 1), **self.props}
        return props if not key else props.get(key, "")

    def SetClipProperty(self, key, value):
        if key in ("File Path", "Frames", "Type", "Resolution"):
            return False
        self.props[key] = str(value)
        return True


class MediaPool:
    def __init__(self, project: Project):
        self.project = project
        self.root = Folder("Master")
        self.current = self.root
        self.selected: MediaPoolItem | None = None
        self.append_fault: str | None = None  # "drop": every placement is silently dropped

    def GetRootFolder(self): return self.root
    def GetCurrentFolder(self): return self.current
    def GetUniqueId(self): return f"pool-{self.project.name}"
    def GetSelectedClips(self): return [self.selected] if self.selected else []

    def SetCurrentFolder(self, folder):
        if not isinstance(folder, Folder) or folder not in list(self.root.walk()):
            return False
        self.current = folder
        return True

    def SetSelectedClip(self, clip):
        self.selected = clip
        return True

    def AddSubFolder(self, folder, name):
        sub = Folder(name, folder)
        folder.subfolders.append(sub)
        return sub

    def clips(self) -> list[MediaPoolItem]:
        return [c for f in self.root.walk() for c in f.clips]

    def ImportMedia(self, items):
        made = []
        for item in items:
            clip = self._import_one(item)
            if clip is not None:
                made.append(clip)
        self.current.clips += made
        return made

    def _import_one(self, item) -> MediaPoolItem | None:
        if isinstance(item, dict):
            pattern, a, b = str(item.get("FilePath", "")), item.get("StartIndex"), item.get("EndIndex")
            m = _PRINTF.search(os.path.basename(pattern))
            if not m or a is None or b is None or b < a:
                return None
            files = [Path(pattern % n) for n in range(a, b + 1)]
            if not all(f.is_file() for f in files):
                return None
            width = int(m[1] or 1)
            shown = re.sub(_PRINTF, f"[{a:0{width}d}-{b:0{width}d}]", pattern)
            return MediaPoolItem(self, os.path.basename(shown), files, shown, still=False)
        path = Path(str(item))
        if not path.is_file() or path.suffix.lower() not in (".tif", ".tiff", ".exr", ".png", ".jpg", ".dpx"):
            return None
        return MediaPoolItem(self, path.name, [path], str(path), still=True)

    def DeleteClips(self, clips):
        targets = set(id(c) for c in clips)
        for folder in self.root.walk():
            folder.clips = [c for c in folder.clips if id(c) not in targets]
        if self.selected is not None and id(self.selected) in targets:
            self.selected = None
        return True

    def DeleteFolders(self, folders):
        for folder in folders:
            if folder is self.root or folder.parent is None:
                return False
            self.DeleteClips([c for f in folder.walk() for c in f.clips])
            folder.parent.subfolders.remove(folder)
            if self.current in list(folder.walk()):
                self.current = folder.parent
        return True

    def CreateEmptyTimeline(self, name):
        if any(t.name == name for t in self.project.timelines):
            return None
        tl = Timeline(self.project, name)
        self.project.timelines.append(tl)
        if self.project.current_timeline is None:
            self.project.current_timeline = tl
        return tl

    def AppendToTimeline(self, *args):
        infos = list(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple)) else list(args)
        tl = self.project.current_timeline
        if tl is None:
            return []
        placed = []
        for info in infos:
            if isinstance(info, MediaPoolItem):
                info = {"mediaPoolItem": info, "startFrame": 0, "endFrame": info.frames}
            placed.append(tl.append(info, fault=self.append_fault))
        return placed

