"""The test double keeps the Resolve behaviour the plugin must survive, and the plugin's small
pieces (timecode, target finding, codec choice, names) read it right."""

from __future__ import annotations

import pytest

from resolvekit import CLIP_AT, SECOND_AT, START
from fake_resolve import FakeResolve
from plugin_resolve import timecode
from plugin_resolve.errors import NoTarget
from plugin_resolve.render import pick_codec
from plugin_resolve.target import find_target, marked_range
from plugin_resolve.workdir import next_version, track_name


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


def test_marks_relative_or_absolute_and_the_playhead(resolve):
    _, timeline, _ = parts(resolve)
    assert marked_range(timeline) == (START + 12, START + 16)
    timeline.SetMarkInOut(START + 12, START + 16)
    assert marked_range(timeline) == (START + 12, START + 16)
    t = find_target(timeline)
    assert (t.first, t.last, t.track, t.count, t.from_marks) == (START + 12, START + 16, 1, 5, True)
    timeline.ClearMarkInOut()
    timeline.SetCurrentTimecode("01:00:01:06")
    t = find_target(timeline)
    assert (t.first, t.last, t.from_marks) == (SECOND_AT, SECOND_AT + 5, False)
    with pytest.raises(NoTarget, match="no video track V4"):
        find_target(timeline, 4)


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
    assert timecode.to_frame("01:00:00:00", 24) == 86400
    assert timecode.to_frame("00:01:00;02", 29.97, True) == 1800
    assert timecode.to_frame("00:10:00;00", 29.97, True) == 17982


def test_free_edition_has_no_uimanager():
    assert FakeResolve(studio=False).Fusion().UIManager is None
