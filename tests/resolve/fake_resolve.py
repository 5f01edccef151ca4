"""An in-memory DaVinci Resolve Studio for tests, after Resolve's scripting README (2026).

In: calls a script makes on `resolve` (ProjectManager, Project, MediaPool, Folder,
MediaPoolItem, Timeline, TimelineItem, render queue). Out: the answers Resolve gives, with the
measured quirks the plugin must survive (docs/reference/api-limitations.md):

- AppendToTimeline never overwrites: a placement overlapping an item on its track (or on a
  locked or missing track) is silently dropped; the returned item then has an empty unique id
  and is not on the timeline. clipInfo endFrame is exclusive.
- SetRenderSettings layers the given keys on the current Deliver state (an unknown key, a
  wrongly typed value or an empty CustomName rejects the whole payload); MarkIn/MarkOut are
  absolute record frames, clamped to the timeline start; StartRendering needs the Deliver page.
- GetRenderJobStatus's JobStatus is a display string; a job renders one frame per status poll
  and writes real image files (16-bit TIFF, half or float EXR, via engine.io) of the composite
  of the enabled video tracks for its range. `project.render_fault` makes a job fail.
- Marks: GetMarkInOut/SetMarkInOut values are relative to the timeline start (type stubs); the
  Deliver page's render range is the timeline's In/Out, so SetRenderSettings' MarkIn/MarkOut
  (absolute frames) move the marks, and a rendering job moves the playhead (measured).
- Time: a timeline starts at its start timecode ("01:00:00:00" unless SetStartTimecode says
  otherwise) counted at the project rate; `timelineFrameRate` is the bare rate ("29.97"; setting
  "29.97 DF" turns `timelineDropFrameTimecode` to "1", as the README says) and timecodes use ':'
  even when drop frame. GetCurrentTimecode is empty off the Cut/Edit/Color/Fairlight/Deliver pages.
- Pixels: a render is the composite of the enabled video tracks at the timeline resolution, scaled
  to the job's FormatWidth/FormatHeight, with the Deliver page's data burn-in (`DataBurnIn` other
  than "None" while `Project.burn_in` is set up) and burnt-in subtitles (`ExportSubtitle` with
  `SubtitleFormat` "BurnIn" on a timeline with a subtitle track) drawn in; `AddFrameHandles` widens
  the range. A job's TargetDir reads back with symlinks resolved (/tmp -> /private/tmp on macOS).
- ImportMedia lands in the current folder; an image sequence is imported with
  {"FilePath": "name_%06d.tif", "StartIndex", "EndIndex"} and shows "name_[a-b].tif".
- Timeline.DeleteClips fails on the Fairlight page (a refusal is logged in `Timeline.refused`);
  MediaPool.DeleteClips does not touch timelines (removing a clip's timeline uses is not
  documented); GetItemListInTrack is ordered by start.

Test hooks (not Resolve API): `TimelineItem.gain` (a grade applied at render),
`Project.render_fault`, `Project.burn_in`, `MediaPool.append_fault` ("drop": placements are
silently dropped; "short": they land one frame short), `Timeline.refused`, `on_poll` (called at
every render-status poll), `snapshot(resolve)` (everything a run must leave as it was) and
`FakeResolve(studio=False)` (UIManager is None, as on the free edition).
"""

from __future__ import annotations

import itertools
import os
import re
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from engine.io.images import read_image, write_image

PAGES = ("media", "cut", "edit", "fusion", "color", "fairlight", "deliver")
TIMECODE_PAGES = ("cut", "edit", "color", "fairlight", "deliver")
_ids = itertools.count(1)


def _uid() -> str:
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


# --- application -----------------------------------------------------------------------------

class FakeFusion:
    def __init__(self, studio: bool):
        self.UIManager = FakeUIManager() if studio else None


class FakeUIManager:
    """Placeholder: a window toolkit exists (its widgets are not modelled here)."""


class FakeResolve:
    def __init__(self, *, studio: bool = True, version: tuple = (20, 2, 2, 7, "")):
        self.studio, self.version = studio, version
        self.page = "edit"
        self.pm = ProjectManager(self)
        self.fusion = FakeFusion(studio)

    def GetProjectManager(self): return self.pm
    def Fusion(self): return self.fusion
    def GetCurrentPage(self): return self.page
    def GetProductName(self): return "DaVinci Resolve Studio" if self.studio else "DaVinci Resolve"
    def GetVersion(self): return list(self.version)
    def GetVersionString(self): return ".".join(str(v) for v in self.version[:4])

    def OpenPage(self, name):
        if name not in PAGES:
            return False
        self.page = name
        return True


class ProjectManager:
    def __init__(self, app: FakeResolve):
        self.app, self.projects, self.current = app, {}, None

    def CreateProject(self, name, media_location=None):
        if name in self.projects:
            return None
        self.projects[name] = self.current = Project(self.app, name)
        return self.current

    def LoadProject(self, name):
        self.current = self.projects.get(name)
        return self.current

    def GetCurrentProject(self): return self.current
    def SaveProject(self): return self.current is not None
    def GetProjectListInCurrentFolder(self): return list(self.projects)


# --- project and render queue ----------------------------------------------------------------

RENDER_FORMATS = {"QuickTime": "mov", "MP4": "mp4", "TIFF": "tif", "OpenEXR": "exr", "DPX": "dpx"}
RENDER_CODECS = {
    "mov": {"Apple ProRes 422 HQ": "ProRes422HQ", "H.264": "H264"},
    "mp4": {"H.264": "H264", "H.265": "H265"},
    "tif": {"RGB 8 bits": "RGB8", "RGB 16 bits LZW": "RGB16LZW", "RGB 16 bits": "RGB16"},
    "exr": {"RGB float (No compression)": "RGBFloat", "RGB half (ZIP)": "RGBHalfZIP",
            "RGB half (No compression)": "RGBHalf"},
    "dpx": {"RGB 10 bits": "RGB10"},
}
# Every key of the README's "Looking up Render Settings", with the type it takes.
RENDER_KEYS = {
    "SelectAllFrames": bool, "MarkIn": int, "MarkOut": int, "TargetDir": str, "CustomName": str,
    "UniqueFilenameStyle": int, "ExportVideo": bool, "ExportAudio": bool, "FormatWidth": int, "FormatHeight": int,
    "FrameRate": (int, float), "PixelAspectRatio": str, "VideoQuality": (int, str), "AudioCodec": str,
    "AudioBitDepth": int, "AudioSampleRate": int, "ColorSpaceTag": str, "GammaTag": str, "ExportAlpha": bool,
    "EncodingProfile": str, "MultiPassEncode": bool, "AlphaMode": int, "NetworkOptimization": bool,
    "ClipStartFrame": int, "TimelineStartTimecode": str, "ReplaceExistingFilesInPlace": bool,
    "ExportSubtitle": bool, "SubtitleFormat": str, "UseFullExtents": bool, "AddFrameHandles": int,
    "DataBurnIn": str,
}


class Project:
    def __init__(self, app: FakeResolve, name: str):
        self.app, self.name = app, name
        self.settings = {"timelineFrameRate": "24", "timelineDropFrameTimecode": "0",
                         "timelineResolutionWidth": "64", "timelineResolutionHeight": "48"}
        self.pool = MediaPool(self)
        self.timelines: list[Timeline] = []
        self.current_timeline: Timeline | None = None
        # The Deliver page as a user left it: an H.264 preset, whole timeline, audio on.
        self.render_format, self.render_codec, self.render_mode = "mp4", "H264", 0
        self.render_settings: dict[str, Any] = {"SelectAllFrames": True, "MarkIn": 0, "MarkOut": 0,
                                                "TargetDir": "/nonexistent/deliveries", "CustomName": "reel1",
                                                "ExportVideo": True, "ExportAudio": True, "ExportAlpha": False,
                                                "FormatWidth": 1920, "FormatHeight": 1080,
                                                "DataBurnIn": "Same as project", "ExportSubtitle": False,
                                                "SubtitleFormat": "BurnIn", "UseFullExtents": False,
                                                "AddFrameHandles": 0}
        self.presets: dict[str, dict] = {"H.264 Master": self._render_state()}
        self.jobs: dict[str, RenderJob] = {}
        self.render_fault: tuple[int, str] | None = None  # (frames written before failing, error text)
        self.on_poll: Any = None  # test hook: called at every GetRenderJobStatus (the editor acting meanwhile)
        self.burn_in = False  # test hook: the project has a data burn-in set up (Workspace > Data Burn-In)

    def GetName(self): return self.name
    def GetMediaPool(self): return self.pool
    def GetTimelineCount(self): return len(self.timelines)
    def GetCurrentTimeline(self): return self.current_timeline
    def GetUniqueId(self): return f"project-{self.name}"

    def GetTimelineByIndex(self, idx):
        return self.timelines[idx - 1] if 1 <= idx <= len(self.timelines) else None

    def SetCurrentTimeline(self, timeline):
        if timeline not in self.timelines:
            return False
        self.current_timeline = timeline
        return True

    def GetSetting(self, name=None):
        return dict(self.settings) if not name else self.settings.get(name, "")

    def SetSetting(self, name, value):
        value = str(value).strip()
        if name == "timelineFrameRate" and value.upper().endswith("DF"):  # README: "29.97 DF" enables drop frame
            value = value[:-2].strip()
            self.settings["timelineDropFrameTimecode"] = "1"
        self.settings[name] = value
        return True

    # render state ---------------------------------------------------------------------------
    def _render_state(self) -> dict:
        return {"format": self.render_format, "codec": self.render_codec, "mode": self.render_mode,
                "settings": dict(self.render_settings)}

    def GetRenderFormats(self): return dict(RENDER_FORMATS)
    def GetRenderCodecs(self, fmt): return dict(RENDER_CODECS.get(fmt, {}))
    def GetCurrentRenderFormatAndCodec(self): return {"format": self.render_format, "codec": self.render_codec}
    def GetCurrentRenderMode(self): return self.render_mode

    def SetCurrentRenderFormatAndCodec(self, fmt, codec):
        if codec not in RENDER_CODECS.get(fmt, {}).values():  # ids only, never the descriptions
            return False
        self.render_format, self.render_codec = fmt, codec
        return True

    def SetCurrentRenderMode(self, mode):
        if mode not in (0, 1):
            return False
        self.render_mode = mode
        return True

    def SetRenderSettings(self, settings):
        for key, value in settings.items():
            kind = RENDER_KEYS.get(key)
            if kind is None or isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
                return False
            if key == "CustomName" and not value:
                return False  # measured: an empty name rejects the whole payload
        self.render_settings.update(settings)
        tl = self.current_timeline
        if tl is not None and not self.render_settings["SelectAllFrames"] and {"MarkIn", "MarkOut"} & set(settings):
            start = tl.GetStartFrame()  # the Deliver range is the timeline's In/Out
            tl.SetMarkInOut(self.render_settings["MarkIn"] - start, self.render_settings["MarkOut"] - start)
        return True

    def GetRenderPresetList(self): return list(self.presets)

    def SaveAsNewRenderPreset(self, name):
        if name in self.presets:
            return False
        self.presets[name] = self._render_state()
        return True

    def LoadRenderPreset(self, name):
        state = self.presets.get(name)
        if state is None:
            return False
        self.render_format, self.render_codec, self.render_mode = state["format"], state["codec"], state["mode"]
        self.render_settings = dict(state["settings"])
        return True

    def DeleteRenderPreset(self, name):
        return self.presets.pop(name, None) is not None

    def AddRenderJob(self):
        tl, s = self.current_timeline, self.render_settings
        if tl is None or not s.get("TargetDir") or not s.get("ExportVideo", True) and not s.get("ExportAudio"):
            return ""
        if s.get("SelectAllFrames"):
            first, last = tl.GetStartFrame(), tl.GetEndFrame() - 1
        else:  # absolute record frames, clamped to the timeline start
            first, last = max(s["MarkIn"], tl.GetStartFrame()), max(s["MarkOut"], tl.GetStartFrame())
        if not s.get("UseFullExtents"):
            first, last = first - s.get("AddFrameHandles", 0), last + s.get("AddFrameHandles", 0)
        job = RenderJob(self, tl, first, last)
        self.jobs[job.id] = job
        return job.id

    def GetRenderJobList(self):
        return [j.info() for j in self.jobs.values()]

    def DeleteRenderJob(self, job_id):
        job = self.jobs.get(job_id)
        if job is None or job.status == "Rendering":
            return False
        del self.jobs[job_id]
        return True

    def DeleteAllRenderJobs(self):
        if self.IsRenderingInProgress():
            return False
        self.jobs.clear()
        return True

    def StartRendering(self, *args, isInteractiveMode=False):
        if self.app.page != "deliver" or self.IsRenderingInProgress():
            return False
        if args and isinstance(args[0], (list, tuple)):
            ids = list(args[0])
        elif args and isinstance(args[0], bool):
            ids = list(self.jobs)
        else:
            ids = list(args) or list(self.jobs)
        if not ids or any(i not in self.jobs for i in ids):
            return False
        for i in ids:
            self.jobs[i].start()
        return True

    def StopRendering(self):
        for job in self.jobs.values():
            if job.status == "Rendering":
                job.status = "Cancelled"

    def IsRenderingInProgress(self):
        return any(j.status == "Rendering" for j in self.jobs.values())

    def GetRenderJobStatus(self, job_id):
        job = self.jobs.get(job_id)
        if job is None:
            return {}
        job.tick()
        if self.on_poll is not None:
            self.on_poll()
        return job.status_info()


class RenderJob:
    def __init__(self, project: Project, timeline: "Timeline", first: int, last: int):
        self.project, self.timeline, self.first, self.last = project, timeline, first, last
        self.id = uuid.uuid4().hex
        self.settings = dict(project.render_settings)
        self.format, self.codec = project.render_format, project.render_codec
        self.status, self.done, self.error = "Ready", 0, None

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def info(self) -> dict:
        s = self.settings
        return {"JobId": self.id, "RenderJobName": f"Job {self.id[:4]}", "TimelineName": self.timeline.name,
                "TargetDir": os.path.realpath(s["TargetDir"]), "OutputFilename": s.get("CustomName", ""),
                "MarkIn": self.first, "MarkOut": self.last, "IsExportVideo": s.get("ExportVideo", True),
                "IsExportAudio": s.get("ExportAudio", False), "FormatWidth": s.get("FormatWidth"),
                "FormatHeight": s.get("FormatHeight"), "RenderMode": "Single clip", "VideoFormat": self.format,
                "VideoCodec": self.codec, "PresetName": "Custom"}

    def start(self) -> None:
        self.status, self.done, self.error = "Rendering", 0, None

    def status_info(self) -> dict:
        out = {"JobStatus": self.status, "CompletionPercentage": int(100 * self.done / self.count),
               "TimeTakenToRenderInMs": 40 * self.done}
        if self.error:
            out["Error"] = self.error
        return out

    def tick(self) -> None:
        """Render one more frame (a poll stands in for time passing)."""
        if self.status != "Rendering":
            return
        fault = self.project.render_fault
        if fault is not None and self.done >= fault[0]:
            self.status, self.error = "Failed", fault[1]
            return
        frame = self.first + self.done
        self.timeline.playhead = frame  # measured: rendering moves the playhead
        self.write(frame)
        self.done += 1
        if self.done == self.count:
            self.status = "Complete"

    def write(self, frame: int) -> None:
        target = Path(self.settings["TargetDir"])
        target.mkdir(parents=True, exist_ok=True)
        s = self.settings
        rgb = _resize(self.timeline.composite(frame), int(s.get("FormatWidth") or 0), int(s.get("FormatHeight") or 0))
        if s.get("DataBurnIn", "None") != "None" and self.project.burn_in:
            rgb[:2] = 1.0  # a timecode window across the top
        if s.get("ExportSubtitle") and s.get("SubtitleFormat") == "BurnIn" and self.timeline.tracks["subtitle"]:
            rgb[-2:] = 1.0  # the subtitle line
        ext = {"tif": "tif", "exr": "exr"}.get(self.format)
        if ext is None:
            raise AssertionError(f"the test double renders only tif and exr, not {self.format}")
        if self.codec.startswith("RGB16"):
            pixels = np.round(rgb * 65535).astype(np.uint16)
        elif self.codec == "RGB8":
            pixels = np.round(rgb * 255).astype(np.uint8)
        elif "Half" in self.codec:
            pixels = rgb.astype(np.float16)
        else:
            pixels = rgb.astype(np.float32)
        write_image(target / f"{self.settings['CustomName']}_{frame:08d}.{ext}", pixels)


# --- media pool ------------------------------------------------------------------------------

class Folder:
    def __init__(self, name: str, parent: "Folder | None" = None):
        self.name, self.parent, self.id = name, parent, _uid()
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
        self.id = _uid()
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
            placed.append(tl._append(info, fault=self.append_fault))
        return placed


# --- timeline --------------------------------------------------------------------------------

class Track:
    def __init__(self, name: str):
        self.name, self.enabled, self.locked, self.items = name, True, False, []


class TimelineItem:
    def __init__(self, timeline: "Timeline", clip: MediaPoolItem, start: int, duration: int, left: int,
                 placed: bool = True):
        self.timeline, self.clip, self.start, self.duration, self.left = timeline, clip, start, duration, left
        self.id = _uid() if placed else ""
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
        self.id = _uid()
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

    def GetTrackName(self, kind, index):
        t = self._track(kind, index)
        return t.name if t else ""

    def SetTrackName(self, kind, index, name):
        t = self._track(kind, index)
        if t is None:
            return False
        t.name = name
        return True

    def SetTrackEnable(self, kind, index, on):
        t = self._track(kind, index)
        if t is None:
            return False
        t.enabled = bool(on)
        return True

    def GetIsTrackEnabled(self, kind, index):
        t = self._track(kind, index)
        return bool(t and t.enabled)

    def SetTrackLock(self, kind, index, on):
        t = self._track(kind, index)
        if t is None:
            return False
        t.locked = bool(on)
        return True

    def GetIsTrackLocked(self, kind, index):
        t = self._track(kind, index)
        return bool(t and t.locked)

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
    def _append(self, info: dict, fault: str | None = None) -> TimelineItem:
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
                    return _resize(rgb, w, h)
        return np.zeros((h, w, 3), np.float32)


def _resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour scale to width x height (0 keeps that side)."""
    h, w = rgb.shape[:2]
    width, height = width or w, height or h
    if (height, width) == (h, w):
        return rgb.copy()
    return rgb[np.arange(height) * h // height][:, np.arange(width) * w // width].copy()


# --- what a run must leave as it was ---------------------------------------------------------

def snapshot(resolve: FakeResolve) -> dict:
    """Everything a cancelled or failed run must not change (plain data, comparable with ==)."""
    out = {"page": resolve.page, "projects": {}}
    for name, p in resolve.pm.projects.items():
        out["projects"][name] = {
            "timelines": [{
                "name": tl.name, "marks": tl.GetMarkInOut(), "playhead": tl.playhead,
                "tracks": {kind: [(t.name, t.enabled, t.locked,
                                   [(i.id, i.clip.id, i.start, i.duration, i.left, i.enabled) for i in t.items])
                                  for t in tracks] for kind, tracks in tl.tracks.items()},
            } for tl in p.timelines],
            "current_timeline": p.current_timeline.name if p.current_timeline else None,
            "pool": [(f.id, f.name, [c.id for c in f.clips], [s.id for s in f.subfolders]) for f in p.pool.root.walk()],
            "current_folder": p.pool.current.id,
            "render": p._render_state(), "presets": sorted(p.presets), "jobs": p.GetRenderJobList(),
        }
    return out
