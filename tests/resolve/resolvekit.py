"""Shared numbers and builder of the test timeline (tests import these from here, never from
conftest, whose module name other test folders share)."""

from fake_resolve import FakeResolve

START = 86400  # 01:00:00:00 at 24 fps
CLIP_AT, CLIP_IN, CLIP_LEN = START + 10, 3, 12  # V1: shot frames 3..14 at record 86410..86421
SECOND_AT, SECOND_LEN = START + 30, 6


def build_resolve(shot: str, *, rate: str = "24", start_timecode: str = "01:00:00:00") -> FakeResolve:
    """A Resolve with project "Demo Project" and timeline "Edit 1" at `rate` starting at
    `start_timecode`: V1 holds the shot at start+10..start+21 (source frames 3..14) and at
    start+30..start+35 (source frames 0..5); In/Out are marked at start+12..start+16."""
    app = FakeResolve()
    project = app.GetProjectManager().CreateProject("Demo Project")
    project.SetSetting("timelineFrameRate", rate)
    pool = project.GetMediaPool()
    timeline = pool.CreateEmptyTimeline("Edit 1")
    timeline.SetStartTimecode(start_timecode)
    start = timeline.GetStartFrame()
    [camera] = pool.ImportMedia([{"FilePath": shot, "StartIndex": 1001, "EndIndex": 1020}])
    placed = pool.AppendToTimeline([
        {"mediaPoolItem": camera, "startFrame": CLIP_IN, "endFrame": CLIP_IN + CLIP_LEN, "trackIndex": 1,
         "recordFrame": start + CLIP_AT - START},
        {"mediaPoolItem": camera, "startFrame": 0, "endFrame": SECOND_LEN, "trackIndex": 1,
         "recordFrame": start + SECOND_AT - START},
    ])
    assert all(i.GetUniqueId() for i in placed)
    timeline.SetMarkInOut(12, 16)  # as GetMarkInOut reports them: relative to the start
    return app
