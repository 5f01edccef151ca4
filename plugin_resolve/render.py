"""Render a record range from the Deliver page to an image sequence the engine can read.

In: Resolve, the project, the current timeline, a `Target` (absolute record frames and
track), an empty folder, and "tif" (16-bit TIFF) or "exr" (half-float EXR). Out: the sorted
paths of exactly `target.count` frames, with the target track's grades and effects and those
of the tracks below it (tracks above are switched off while rendering).

Known Resolve behaviour handled here (sources in docs/resolve.md): SetRenderSettings layers on
the current Deliver state, so every key we rely on and every key that changes pixels is set,
and the queued job is read back (range in absolute frames, folder normalised); rendering needs
the Deliver page, moves the playhead and sets the In/Out marks; JobStatus is a localized
string, so only CompletionPercentage and Error are trusted, and the frames on disk are the
final proof. Whatever happens, the render job is deleted; the tracks, the marks, the playhead,
the page and (through a temporary render preset) the Deliver settings are put back, and a
failed render leaves no files.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from plugin_resolve.errors import Cancelled, RenderFailed
from plugin_resolve.target import Target
from plugin_resolve.timecode import Clock

POLL_S = 0.25
STOP_TIMEOUT_S = 60.0
# (format id, what the codec description must mention, words that make a codec less wanted)
FORMATS = {"tif": ("tif", "16", ("lzw", "zip", "compress")),
           "exr": ("exr", "half", ("zip", "piz", "dwa", "rle", "b44"))}
_NUMBERED = re.compile(r"(\d+)\.(tif|tiff|exr)$", re.IGNORECASE)


def pick_codec(project: Any, image_format: str) -> tuple[str, str]:
    """(format id, codec id) for 16-bit TIFF or half EXR, looked up in Resolve's own tables
    (GetRenderCodecs maps description -> id; the id is what SetCurrentRenderFormatAndCodec takes)."""
    want, mention, avoid = FORMATS[image_format]
    formats = project.GetRenderFormats() or {}
    fmt = next((v for k, v in formats.items() if str(v).lower() == want), None)
    if fmt is None:
        raise RenderFailed(f"this Resolve offers no {want.upper()} render format (it has: {', '.join(formats)}).")
    codecs = project.GetRenderCodecs(fmt) or {}
    fits = [(desc, cid) for desc, cid in codecs.items() if mention in f"{desc} {cid}".lower()]
    if not fits:
        raise RenderFailed(f"Resolve's {want.upper()} render format has no {mention} codec "
                           f"(it has: {', '.join(codecs)}).")
    fits.sort(key=lambda dc: any(w in f"{dc[0]} {dc[1]}".lower() and "no compression" not in dc[0].lower()
                                 for w in avoid))
    return fmt, fits[0][1]


def _resolution(project: Any, timeline: Any) -> dict[str, int]:
    out = {}
    for key, setting in (("FormatWidth", "timelineResolutionWidth"), ("FormatHeight", "timelineResolutionHeight")):
        value = timeline.GetSetting(setting) or project.GetSetting(setting)
        if str(value or "").isdigit():
            out[key] = int(value)
    return out


def pixel_settings(project: Any, timeline: Any, clock: Clock) -> dict[str, Any]:
    """Every SetRenderSettings key (README, "Looking up Render Settings") that changes the pixels or
    the frames rendered, pinned: the Deliver page's leftovers must not reach the engine."""
    return {"DataBurnIn": "None", "ExportSubtitle": False, "ColorSpaceTag": "Same as Project",
            "GammaTag": "Same as Project", "UseFullExtents": False, "AddFrameHandles": 0, "FrameRate": clock.fps,
            **_resolution(project, timeline)}


OPTIONAL = {"ExportAlpha": False, "PixelAspectRatio": "square"}  # refused by some formats and SD sizes


class _Restore:
    """Puts back what rendering changes: tracks above the target, the In/Out marks, the playhead,
    the page and (through a temporary render preset) the Deliver settings."""

    def __init__(self, resolve: Any, project: Any, timeline: Any, target: Target):
        self.resolve, self.project, self.timeline = resolve, project, timeline
        self.page = resolve.GetCurrentPage()
        self.marks = timeline.GetMarkInOut() or {}
        self.playhead = timeline.GetCurrentTimecode() or ""  # empty off the timecode pages: read on Deliver
        self.preset = f"ipfacediff-restore-{uuid.uuid4().hex[:8]}"
        self.preset_saved = bool(project.SaveAsNewRenderPreset(self.preset))
        self.disabled = []
        for t in range(target.track + 1, int(timeline.GetTrackCount("video") or 0) + 1):
            if timeline.GetIsTrackEnabled("video", t):
                timeline.SetTrackEnable("video", t, False)
                self.disabled.append(t)

    def __call__(self) -> None:
        for t in self.disabled:
            self.timeline.SetTrackEnable("video", t, True)
        if self.preset_saved:
            self.project.LoadRenderPreset(self.preset)
            self.project.DeleteRenderPreset(self.preset)
        self.timeline.ClearMarkInOut("all")
        for kind, mark in self.marks.items():
            if isinstance(mark, dict) and "in" in mark and "out" in mark:
                self.timeline.SetMarkInOut(mark["in"], mark["out"], kind)
        if self.playhead:
            self.timeline.SetCurrentTimecode(self.playhead)  # still on Deliver, a timecode page
        if self.page and self.resolve.GetCurrentPage() != self.page:
            self.resolve.OpenPage(self.page)


def render_range(resolve: Any, project: Any, timeline: Any, target: Target, out_dir: Path, name: str,
                 image_format: str = "tif", *, progress: Callable[[float, str], None] = lambda f, m: None,
                 cancel: Callable[[], bool] = lambda: False) -> list[Path]:
    fmt, codec = pick_codec(project, image_format)
    clock = Clock.of(timeline)
    restore = _Restore(resolve, project, timeline, target)
    job = None
    ok = False
    try:
        if not resolve.OpenPage("deliver"):
            raise RenderFailed("Resolve would not open the Deliver page, which rendering needs.")
        restore.playhead = restore.playhead or timeline.GetCurrentTimecode() or ""
        if not project.SetCurrentRenderFormatAndCodec(fmt, codec):
            raise RenderFailed(f"Resolve refused the render format {fmt}/{codec}.")
        if not project.SetCurrentRenderMode(1):
            raise RenderFailed("Resolve refused single-clip render mode.")
        wanted = {"SelectAllFrames": False, "MarkIn": target.first, "MarkOut": target.last,
                  "TargetDir": str(out_dir), "CustomName": name, "ExportVideo": True, "ExportAudio": False}
        if not project.SetRenderSettings(wanted):
            raise RenderFailed("Resolve refused the render settings (range, folder and name).")
        for key, value in pixel_settings(project, timeline, clock).items():  # one by one: a refusal is named
            if not project.SetRenderSettings({key: value}):
                raise RenderFailed(f"Resolve refused the render setting {key}={value!r}, so the Deliver page's own "
                                   f"{key} could reach the edited frames; nothing was changed.")
        for key, value in OPTIONAL.items():
            project.SetRenderSettings({key: value})
        job = project.AddRenderJob()
        if not job:
            raise RenderFailed("Resolve did not add a render job to the queue.")
        _check_job(project, job, target, out_dir, clock)
        if not project.StartRendering([job], False):  # positional: the bridge takes no keywords
            raise RenderFailed("Resolve did not start rendering (is another render running?).")
        _wait(project, job, target, progress, cancel)
        frames = _frames(out_dir)
        if len(frames) != target.count:
            raise RenderFailed(f"Resolve reported the render complete but wrote {len(frames)} of "
                               f"{target.count} frames to {out_dir}.")
        ok = True
        return frames
    except KeyboardInterrupt:
        _stop(project)
        raise Cancelled("the render") from None
    except Exception:
        _stop(project)
        raise
    finally:
        if job:
            project.DeleteRenderJob(job)
        restore()
        if not ok:
            for p in out_dir.glob("*"):
                p.unlink(missing_ok=True)


def same_path(a: Any, b: Any) -> bool:
    """Two spellings of one folder (trailing separators, symlinks, case on Windows and macOS)."""
    return os.path.normcase(os.path.realpath(str(a))) == os.path.normcase(os.path.realpath(str(b)))


def _check_job(project: Any, job: str, target: Target, out_dir: Path, clock: Clock) -> None:
    """Read the queued job back: its range (in absolute frames) and folder must be what we asked for."""
    info = next((j for j in project.GetRenderJobList() or [] if j.get("JobId") == job), None)
    if info is None:
        return  # older builds list no JobId; the frames on disk are checked afterwards anyway
    try:
        first, last = clock.render(info.get("MarkIn")), clock.render(info.get("MarkOut"))
    except (TypeError, ValueError):
        first = last = None
    folder = str(info.get("TargetDir") or out_dir)
    if (first, last) != (target.first, target.last) or not same_path(folder, out_dir):
        raise RenderFailed(f"Resolve queued frames {first}-{last} into {folder} instead of "
                           f"{target.first}-{target.last} into {out_dir}, so its frame numbering differs from the "
                           "one ipfacediff assumes (docs/resolve.md, Frames); nothing was changed.")
    if info.get("IsExportVideo") is False:
        raise RenderFailed("Resolve queued the render without video; nothing was changed.")


def _wait(project: Any, job: str, target: Target, progress: Callable, cancel: Callable) -> None:
    while True:
        if cancel():
            _stop(project)
            raise Cancelled("the render")
        status = project.GetRenderJobStatus(job) or {}
        pct = float(status.get("CompletionPercentage") or 0)
        if status.get("Error"):
            raise RenderFailed(f"Resolve could not render the range: {status['Error']}.")
        busy = project.IsRenderingInProgress()
        progress(pct / 100.0, f"Rendering frames {target.first}-{target.last} ({pct:.0f}%)")
        if pct >= 100 and not busy:
            return
        if not busy:
            raise RenderFailed(f"Resolve stopped rendering at {pct:.0f}% ({status.get('JobStatus', 'no status')}).")
        time.sleep(POLL_S)


def _stop(project: Any) -> None:
    if not project.IsRenderingInProgress():
        return
    project.StopRendering()
    end = time.monotonic() + STOP_TIMEOUT_S
    while project.IsRenderingInProgress() and time.monotonic() < end:
        time.sleep(POLL_S)


def _frames(folder: Path) -> list[Path]:
    found = [(int(m[1]), p) for p in folder.iterdir() if p.is_file() and (m := _NUMBERED.search(p.name))]
    return [p for _, p in sorted(found)]
