"""An in-memory DaVinci Resolve Studio for tests, after Resolve's scripting README (2026).

In: calls a script makes on `resolve` (ProjectManager, Project, MediaPool, Folder,
MediaPoolItem, Timeline, TimelineItem, render queue). Out: the answers Resolve gives, with the
measured quirks the plugin must survive (docs/reference/api-limitations.md). This module holds
the application, its pages and its projects; the parts live in `fake_timeline` (timecodes,
tracks, items, marks, pixels), `fake_media_pool` (folders, ImportMedia, AppendToTimeline) and
`fake_deliver` (the Project's render settings, presets and render queue), each with its quirks.

- Project settings: `timelineFrameRate` is the bare rate ("29.97"; setting "29.97 DF" turns
  `timelineDropFrameTimecode` to "1", as the README says); a timeline's settings layer on them.
- Pages: OpenPage switches among the seven pages; the timecode calls, Timeline.DeleteClips and
  StartRendering depend on the current one.

Test hooks (not Resolve API): `snapshot(resolve)` (everything a run must leave as it was) and
`FakeResolve(studio=False)` (UIManager is None, as on the free edition); the parts list theirs.
"""

from __future__ import annotations

from fake_deliver import DeliverPage
from fake_media_pool import MediaPool
from fake_timeline import Timeline

PAGES = ("media", "cut", "edit", "fusion", "color", "fairlight", "deliver")


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


class Project(DeliverPage):
    def __init__(self, app: FakeResolve, name: str):
        self.app, self.name = app, name
        self.settings = {"timelineFrameRate": "24", "timelineDropFrameTimecode": "0",
                         "timelineResolutionWidth": "64", "timelineResolutionHeight": "48"}
        self.pool = MediaPool(self)
        self.timelines: list[Timeline] = []
        self.current_timeline: Timeline | None = None
        super().__init__()

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
            "render": p.render_state(), "presets": sorted(p.presets), "jobs": p.GetRenderJobList(),
        }
    return out
