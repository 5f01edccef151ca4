"""The test double keeps the Resolve behaviour the plugin must survive, and the plugin's small
pieces (timecode, target finding, codec choice, names) read it right."""

from __future__ import annotations

import numpy as np
import pytest

from engine.io.images import read_image
from fake_resolve import FakeResolve
from fake_timeline import frame_to_tc, tc_to_frame
from plugin_resolve import timecode
from plugin_resolve.errors import NoTarget, ResolveEditError
from plugin_resolve.render import pick_codec
from plugin_resolve.target import find_target
from plugin_resolve.workdir import next_version, track_name
from resolvekit import CLIP_AT, CLIP_IN, SECOND_AT, START, build_resolve


def parts(resolve):
    project = resolve.GetProjectManager().GetCurrentProject()
    return project, project.GetCurrentTimeline(), project.GetMediaPool()


def test_append_never_overwrites_and_end_frame_is_exclusive(resolve):
    _, timeline, pool = parts(resolve)
    camera = pool.GetRootFolder().GetClipList()[0]
    assert "[1001-1020]" in camera.GetClipProperty("File Path")
    [ghost] = pool.AppendToTimeline([{"mediaPoolItem": camera, "startFrame": 0, "endFrame": 4, "trackIndex": 1,
                                      "recordFrame": CLIP_AT + 5}])
    assert ghost.GetUniqueId() == "" and len(timeline.GetItemListInTrack("video", 1)) == 2  # silently dropped
    timeline.AddTrack("video")
    [item] = pool.AppendToTimeline([{"mediaPoolItem": camera, "startFrame": 2, "endFrame": 6, "trackIndex": 2,
                                     "recordFrame": CLIP_AT + 5}])
    assert item.GetUniqueId() and (item.GetStart(), item.GetDuration(), item.GetEnd()) == (CLIP_AT + 5, 4, CLIP_AT + 9)
    [none] = pool.AppendToTimeline([{"mediaPoolItem": camera, "startFrame": 0, "endFrame": 2, "trackIndex": 9}])
    assert none.GetUniqueId() == ""


def test_render_settings_layer_and_reject_whole_payloads(resolve):
    project, _, _ = parts(resolve)
    assert project.SetRenderSettings({"MarkIn": START, "MarkOut": START + 3, "CustomName": ""}) is False
    assert project.render_settings["CustomName"] == "reel1"  # nothing of the refused payload applied
    assert project.SetRenderSettings({"MarkIn": START + 1}) is True
    assert project.render_settings["SelectAllFrames"] is True and project.render_settings["ExportAudio"] is True
    assert project.SetRenderSettings({"NoSuchKey": 1}) is False
    assert project.SetCurrentRenderFormatAndCodec("tif", "RGB 16 bits") is False  # a description, not the id


def test_rendering_needs_the_deliver_page(resolve, tmp_path):
    project, _, _ = parts(resolve)
    project.SetCurrentRenderFormatAndCodec("tif", "RGB16")
    project.SetRenderSettings({"SelectAllFrames": False, "MarkIn": START + 12, "MarkOut": START + 13,
                               "TargetDir": str(tmp_path), "CustomName": "x"})
    job = project.AddRenderJob()
    assert project.StartRendering([job]) is False
    resolve.OpenPage("deliver")
    assert project.StartRendering([job]) is True
    while project.IsRenderingInProgress():
        status = project.GetRenderJobStatus(job)
    assert status["CompletionPercentage"] == 100 and sorted(p.name for p in tmp_path.iterdir()) == [
        "x_00086412.tif", "x_00086413.tif"]


def test_import_media_lands_in_the_current_folder(resolve, shot):
    _, _, pool = parts(resolve)
    bin_ = pool.AddSubFolder(pool.GetRootFolder(), "b")
    pool.SetCurrentFolder(bin_)
    [clip] = pool.ImportMedia([{"FilePath": shot, "StartIndex": 1001, "EndIndex": 1004}])
    assert bin_.GetClipList() == [clip] and clip.GetClipProperty("Frames") == "4"
    assert pool.ImportMedia([{"FilePath": shot, "StartIndex": 1001, "EndIndex": 1099}]) == []  # missing files


def test_codec_ids_come_from_resolves_tables(resolve):
    project, _, _ = parts(resolve)
    assert pick_codec(project, "tif") == ("tif", "RGB16")
    assert pick_codec(project, "exr") == ("exr", "RGBHalf")


def test_marks_are_relative_to_the_timeline_start_and_the_playhead_is_read_at_its_rate(resolve):
    _, timeline, _ = parts(resolve)
    t = find_target(timeline)
    assert (t.first, t.last, t.track, t.count, t.from_marks) == (START + 12, START + 16, 1, 5, True)
    timeline.ClearMarkInOut()
    timeline.SetCurrentTimecode("01:00:01:06")
    t = find_target(timeline)
    assert (t.first, t.last, t.from_marks) == (SECOND_AT, SECOND_AT + 5, False)
    with pytest.raises(NoTarget, match="no video track V4"):
        find_target(timeline, 4)


def test_a_mark_an_hour_in_is_an_hour_after_the_timeline_start(resolve):
    _, timeline, pool = parts(resolve)
    camera = pool.GetRootFolder().GetClipList()[0]
    hour = 3600 * 24
    [late] = pool.AppendToTimeline([{"mediaPoolItem": camera, "startFrame": 0, "endFrame": 10, "trackIndex": 1,
                                     "recordFrame": START + hour + 5}])
    timeline.SetMarkInOut(hour + 6, hour + 8)  # 02:00:00:06-08 on a timeline starting at 01:00:00:00
    t = find_target(timeline)
    assert (t.first, t.last, t.items) == (START + hour + 6, START + hour + 8, (late,))


def test_a_timeline_starting_at_frame_1000_reads_marks_1005_to_1016_as_frames_2005_to_2016(shot):
    app = FakeResolve()
    project = app.GetProjectManager().CreateProject("p")
    pool = project.GetMediaPool()
    timeline = pool.CreateEmptyTimeline("t")
    timeline.SetStartTimecode("00:00:41:16")  # frame 1000 at 24 fps
    assert timeline.GetStartFrame() == 1000
    [camera] = pool.ImportMedia([{"FilePath": shot, "StartIndex": 1001, "EndIndex": 1020}])
    [a, b] = pool.AppendToTimeline([
        {"mediaPoolItem": camera, "startFrame": 0, "endFrame": 20, "trackIndex": 1, "recordFrame": 1000},
        {"mediaPoolItem": camera, "startFrame": 0, "endFrame": 20, "trackIndex": 1, "recordFrame": 2000}])
    timeline.SetMarkInOut(1005, 1016)
    t = find_target(timeline)
    assert (t.first, t.last, t.items) == (2005, 2016, (b,))


def test_a_range_over_a_gap_is_refused_with_the_gap_named(resolve):
    _, timeline, _ = parts(resolve)
    timeline.SetMarkInOut(18, 32)  # 86418..86432: clip to 86421, gap 86422..86429, clip from 86430
    with pytest.raises(NoTarget, match=f"at frames {START + 22}-{START + 29}"):
        find_target(timeline)


def test_the_playhead_off_the_timecode_pages_asks_for_the_edit_page(resolve):
    _, timeline, _ = parts(resolve)
    timeline.ClearMarkInOut()
    for page in ("fusion", "media"):
        resolve.OpenPage(page)
        with pytest.raises(NoTarget, match="switch to the Edit page"):
            find_target(timeline, page=resolve.GetCurrentPage())


def test_drop_frame_comes_from_the_timeline_setting_not_the_separator(shot):
    resolve = build_resolve(shot, rate="29.97 DF")
    _, timeline, _ = parts(resolve)
    assert timeline.GetSetting("timelineDropFrameTimecode") == "1" and timeline.GetStartFrame() == 107892
    timeline.ClearMarkInOut()
    assert timeline.SetCurrentTimecode("01:00:01:02")  # the second clip, 30 frames after the start
    assert ";" not in timeline.GetCurrentTimecode()  # this Resolve writes drop-frame timecode with ':'
    t = find_target(timeline)
    assert (t.first, t.last) == (107892 + 30, 107892 + 35)


def test_a_start_timecode_that_does_not_read_as_the_start_frame_stops_the_run(shot, monkeypatch):
    resolve = build_resolve(shot, rate="29.97 DF")
    _, timeline, _ = parts(resolve)
    real = timeline.GetSetting
    monkeypatch.setattr(timeline, "GetSetting", lambda name=None: "" if name == "timelineDropFrameTimecode"
                        else real(name))  # a Resolve without the key: drop frame would go unnoticed
    with pytest.raises(ResolveEditError, match="starts at frame 107892, but its start timecode '01:00:00:00'"):
        find_target(timeline)


def test_our_tracks_are_never_the_automatic_target(resolve):
    _, timeline, pool = parts(resolve)
    timeline.AddTrack("video")
    timeline.SetTrackName("video", 2, track_name(1, "add glasses"))
    camera = pool.GetRootFolder().GetClipList()[0]
    pool.AppendToTimeline([{"mediaPoolItem": camera, "startFrame": 0, "endFrame": 20, "trackIndex": 2,
                            "recordFrame": START}])
    assert find_target(timeline).track == 1 and next_version(timeline) == 2


def test_timecode():
    assert timecode.parse_rate("29.97 DF") == (29.97, True) and timecode.parse_rate("23.976") == (23.976, False)
    assert timecode.parse_rate("29.97", "1") == (29.97, True) and timecode.parse_rate(29.97, "0") == (29.97, False)
    assert timecode.parse_rate(59.94, "1") == (59.94, True) and timecode.parse_rate("30", "1") == (30.0, False)
    assert timecode.to_frame("01:00:00:00", 24) == 86400
    assert timecode.to_frame("00:01:00;02", 29.97, True) == 1800
    assert timecode.to_frame("00:10:00;00", 29.97, True) == 17982
    assert timecode.to_frame("01:00:00:00", 29.97, True) == 107892  # 108 frames fewer than non-drop


def test_the_doubles_drop_frame_timecode_round_trips():
    for frame in (0, 1799, 1800, 17981, 17982, 107892, 107892 + 30, 10 ** 6):
        for fps, drop in (("29.97", "1"), ("59.94", "1"), ("24", "0"), ("29.97", "0")):
            assert tc_to_frame(frame_to_tc(frame, fps, drop), fps, drop) == frame
    assert frame_to_tc(1800, "29.97", "1") == "00:01:00:02"


def test_rendering_moves_the_playhead_and_the_range_becomes_the_marks(resolve, tmp_path):
    project, timeline, _ = parts(resolve)
    timeline.ClearMarkInOut()
    project.SetCurrentRenderFormatAndCodec("tif", "RGB16")
    project.SetRenderSettings({"SelectAllFrames": False, "MarkIn": START + 12, "MarkOut": START + 13,
                               "TargetDir": str(tmp_path), "CustomName": "x"})
    assert timeline.GetMarkInOut() == {"video": {"in": 12, "out": 13}, "audio": {"in": 12, "out": 13}}
    job = project.AddRenderJob()
    resolve.OpenPage("deliver")
    project.StartRendering([job])
    while project.IsRenderingInProgress():
        project.GetRenderJobStatus(job)
    assert timeline.playhead == START + 13


def test_delivers_burn_in_subtitles_and_size_reach_the_pixels(resolve, tmp_path):
    project, timeline, _ = parts(resolve)
    project.burn_in = True
    timeline.AddTrack("subtitle")
    project.SetCurrentRenderFormatAndCodec("tif", "RGB16")
    project.SetRenderSettings({"SelectAllFrames": False, "MarkIn": START + 12, "MarkOut": START + 12,
                               "TargetDir": str(tmp_path), "CustomName": "x", "ExportSubtitle": True,
                               "FormatWidth": 32, "FormatHeight": 24})
    job = project.AddRenderJob()
    resolve.OpenPage("deliver")
    project.StartRendering([job])
    while project.IsRenderingInProgress():
        project.GetRenderJobStatus(job)
    [frame] = [read_image(p) for p in tmp_path.iterdir()]
    assert frame.shape == (24, 32, 3) and (frame[:2] == 65535).all() and (frame[-2:] == 65535).all()
    assert not (frame[2:-2] == 65535).all()


def test_free_edition_has_no_uimanager():
    assert FakeResolve(studio=False).Fusion().UIManager is None


def test_the_timeline_picture_has_the_timeline_resolution(resolve):
    project, timeline, _ = parts(resolve)
    project.SetSetting("timelineResolutionWidth", "32")
    project.SetSetting("timelineResolutionHeight", "24")
    clip = timeline.GetItemListInTrack("video", 1)[0]
    source = clip.GetMediaPoolItem().frame(CLIP_IN + 2)  # 48x64, shown at 24x32
    assert np.array_equal(timeline.composite(CLIP_AT + 2), source[::2, ::2])
    assert timeline.composite(START + 25).shape == (24, 32, 3)  # the gap: black at the timeline size
