"""Let the engine read a clip's source media directly instead of a Deliver render.

In: a `Target` whose range lies inside one clip, and the timeline. Out: (input path, inclusive
source frame range) in the engine's terms — a printf pattern and sequence numbers for an image
sequence (Resolve shows it as `shot_[1001-1100].exr`), or a file and 0-based frames for a
video. The source range comes from the item's left offset (GetLeftOffset is the exact source
in-point; GetSourceStartFrame can be one off). Grades, effects and retimes are not applied in
this mode, so retimed clips and clips at another frame rate are refused.
"""

from __future__ import annotations

import re
from typing import Any

from plugin_resolve import timecode
from plugin_resolve.errors import ResolveEditError
from plugin_resolve.target import Target

_SEQUENCE = re.compile(r"^(.*)\[(\d+)-(\d+)\](.*)$")


def source_input(timeline: Any, target: Target) -> tuple[str, tuple[int, int]]:
    item = target.item
    if item is None or not (int(item.GetStart()) <= target.first and target.last < int(item.GetEnd())):
        raise ResolveEditError("Reading the source media needs the range inside one clip on the chosen track; "
                               "move the marks, pick the track, or use the rendered frames instead.")
    clip = item.GetMediaPoolItem()
    path = str(clip.GetClipProperty("File Path") or "") if clip is not None else ""
    if not path:
        raise ResolveEditError(f"The clip '{item.GetName()}' has no source file (a title or generator?); "
                               "use the rendered frames instead.")
    duration = int(item.GetDuration())
    span = int(item.GetSourceEndFrame()) - int(item.GetSourceStartFrame())
    if abs(span - duration) > 1:
        raise ResolveEditError(f"The clip '{item.GetName()}' is retimed, so its source frames do not match the "
                               "timeline's; use the rendered frames instead.")
    clip_fps = str(clip.GetClipProperty("FPS") or "")
    timeline_fps, _ = timecode.parse_rate(timeline.GetSetting("timelineFrameRate"))
    try:
        if clip_fps and abs(float(clip_fps) - timeline_fps) > 0.01:
            raise ResolveEditError(f"The clip '{item.GetName()}' runs at {clip_fps} fps and the timeline at "
                                   f"{timeline_fps:g}; use the rendered frames instead.")
    except ValueError:
        pass
    offset = int(item.GetLeftOffset()) + (target.first - int(item.GetStart()))
    m = _SEQUENCE.match(path)
    if m:
        first = int(m[2]) + offset
        return f"{m[1]}%0{len(m[2])}d{m[4]}", (first, first + target.count - 1)
    return path, (offset, offset + target.count - 1)
