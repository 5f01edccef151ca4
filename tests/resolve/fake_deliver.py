"""The Deliver page of the Resolve double: render settings, presets, the render queue, jobs that write frames.

In: the Project's render calls (SetRenderSettings, Set/GetCurrentRenderFormatAndCodec, render
presets, AddRenderJob, StartRendering, GetRenderJobStatus ...). Out: Resolve's answers with the
measured quirks (docs/reference/api-limitations.md):

- SetRenderSettings layers the given keys on the current Deliver state (an unknown key, a
  wrongly typed value or an empty CustomName rejects the whole payload); MarkIn/MarkOut are
  absolute record frames, clamped to the timeline start; StartRendering needs the Deliver page.
- the Deliver page's render range is the timeline's In/Out, so SetRenderSettings' MarkIn/MarkOut
  (absolute frames) move the marks, and a rendering job moves the playhead.
- GetRenderJobStatus's JobStatus is a display string; a job renders one frame per status poll
  and writes real image files (16-bit TIFF, half or float EXR, via engine.io) of the composite
  of the enabled video tracks for its range, scaled to the job's FormatWidth/FormatHeight, with
  the data burn-in (`DataBurnIn` other than "None" while `Project.burn_in` is set up) and
  burnt-in subtitles (`ExportSubtitle` with `SubtitleFormat` "BurnIn" on a timeline with a
  subtitle track) drawn in; `AddFrameHandles` widens the range. A job's TargetDir reads back
  with symlinks resolved (/tmp -> /private/tmp on macOS).

Test hooks (not Resolve API): `render_state()` (the Deliver state a run must restore),
`Project.render_fault` (a job fails), `Project.burn_in`, `Project.on_poll` (called at every
render-status poll).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from engine.io.images import write_image
from fake_timeline import Timeline, resize

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


class DeliverPage:
    """The Deliver page and render queue of a Project (Project inherits these calls); it reads the
    project's `app` (the current page) and `current_timeline`."""

    app: Any
    current_timeline: Timeline | None

    def __init__(self):
        # The Deliver page as a user left it: an H.264 preset, whole timeline, audio on.
        self.render_format, self.render_codec, self.render_mode = "mp4", "H264", 0
        self.render_settings: dict[str, Any] = {"SelectAllFrames": True, "MarkIn": 0, "MarkOut": 0,
                                                "TargetDir": "/nonexistent/deliveries", "CustomName": "reel1",
                                                "ExportVideo": True, "ExportAudio": True, "ExportAlpha": False,
                                                "FormatWidth": 1920, "FormatHeight": 1080,
                                                "DataBurnIn": "Same as project", "ExportSubtitle": False,
                                                "SubtitleFormat": "BurnIn", "UseFullExtents": False,
                                                "AddFrameHandles": 0}
        self.presets: dict[str, dict] = {"H.264 Master": self.render_state()}
        self.jobs: dict[str, RenderJob] = {}
        self.render_fault: tuple[int, str] | None = None  # (frames written before failing, error text)
        self.on_poll: Any = None  # test hook: called at every GetRenderJobStatus (the editor acting meanwhile)
        self.burn_in = False  # test hook: the project has a data burn-in set up (Workspace > Data Burn-In)

    def render_state(self) -> dict:
        """The Deliver state (format, codec, mode, settings) as a preset keeps it."""
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
        self.presets[name] = self.render_state()
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
    def __init__(self, project: DeliverPage, timeline: Timeline, first: int, last: int):
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
        rgb = resize(self.timeline.composite(frame), int(s.get("FormatWidth") or 0), int(s.get("FormatHeight") or 0))
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
