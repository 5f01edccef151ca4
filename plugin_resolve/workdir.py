"""Where a run's files live and what its version is called.

In: the project and timeline names, the prompt, the tracks already on the timeline. Out:
the next version number, the track/clip names, and a fresh run folder
`<work root>/<project>/<timeline>/v003-add-glasses-1a2b3c/` with `render/` (frames Resolve
renders for the engine, deleted after the run), `frames/` (the edited sequence the new
track plays; kept) and `preview/`. The work root is `IPFACEDIFF_RESOLVE_DIR` or
`~/ipfacediff-resolve`; the engine must have it as a `--media-root`.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from plugin_resolve.target import TRACK_PREFIX


def work_root(explicit: str | os.PathLike | None = None) -> Path:
    root = explicit or os.environ.get("IPFACEDIFF_RESOLVE_DIR") or Path.home() / "ipfacediff-resolve"
    return Path(root).expanduser().absolute()


def slug(text: str, limit: int = 40) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:limit].strip("-") or "edit"


def next_version(timeline: Any) -> int:
    """1 + the highest version among this timeline's "ipfacediff vN…" tracks."""
    found = [0]
    for t in range(1, int(timeline.GetTrackCount("video") or 0) + 1):
        m = re.match(re.escape(TRACK_PREFIX) + r"(\d+)", str(timeline.GetTrackName("video", t) or ""))
        if m:
            found.append(int(m[1]))
    return max(found) + 1


def track_name(version: int, prompt: str) -> str:
    text = f"{TRACK_PREFIX}{version}: {' '.join(prompt.split())}"
    return text if len(text) <= 60 else text[:59] + "…"


def clip_name(version: int, prompt: str, preview: bool = False) -> str:
    kind = "preview " if preview else ""
    return f"ipfacediff {kind}v{version} - {' '.join(prompt.split())[:80]}"


class RunFolder:
    """One run's folder; `discard()` removes everything, `finish()` keeps only frames/."""

    def __init__(self, root: Path, project: str, timeline: str, version: int, prompt: str):
        run = f"v{version:03d}-{slug(prompt)}-{uuid.uuid4().hex[:6]}"
        self.path = root / slug(project, 60) / slug(timeline, 60) / run
        self.render, self.frames, self.preview = self.path / "render", self.path / "frames", self.path / "preview"

    def create(self) -> "RunFolder":
        self.render.mkdir(parents=True)
        return self

    def drop(self, sub: Path) -> None:
        shutil.rmtree(sub, ignore_errors=True)

    def finish(self) -> None:
        self.drop(self.render)
        self.drop(self.preview)

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        for parent in (self.path.parent, self.path.parent.parent):  # empty timeline/project folders
            try:
                parent.rmdir()
            except OSError:
                break
