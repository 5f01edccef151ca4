"""The whole Resolve flow against the in-memory Resolve and a real engine (tiny preset):
marks or playhead -> Deliver render (or source media) -> engine -> new version on a new track;
and engine down, cancel, render failure, refused settings and a dropped placement leave the
timeline, media pool, render queue and Deliver settings exactly as they were."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.io.images import read_image
from fake_resolve import snapshot
from plugin_resolve import (Cancelled, EngineFailed, EngineNotRunning, NoTarget, PlacementFailed, RenderFailed,
                            ResolveEditError, edit_marked_range, preview_marked_range)
from resolvekit import CLIP_AT, CLIP_IN, SECOND_AT, SECOND_LEN, START, build_resolve
from serverkit import free_port

FAST = {"steps": 2, "face_mode": "full"}  # the clips are noise: no face, so edit whole frames


def current(resolve):
    project = resolve.GetProjectManager().GetCurrentProject()
    return project, project.GetCurrentTimeline(), project.GetMediaPool()


def edit(resolve, engine, work_dir, prompt="add glasses", **kwargs):
    return edit_marked_range(resolve, prompt, engine=engine.address, work_dir=work_dir, **{**FAST, **kwargs})


def rendered(resolve, first, last, *, hide_above=None, dtype=np.uint16):
    """What Resolve's Deliver page renders for these record frames (16-bit TIFF or half EXR)."""
    _, timeline, _ = current(resolve)
    tracks = timeline.tracks["video"]
    saved = [t.enabled for t in tracks]
    if hide_above is not None:
        for t in tracks[hide_above:]:
            t.enabled = False
    try:
        rgb = [timeline.composite(f) for f in range(first, last + 1)]
    finally:
        for t, on in zip(tracks, saved):
            t.enabled = on
    if dtype == np.uint16:
        return [np.round(f * 65535).astype(np.uint16) for f in rgb]
    return [f.astype(dtype) for f in rgb]


def engine_edit(engine, frames, prompt, settings=FAST):
    """The engine's own answer for these frames (sent inline, bypassing the plugin)."""
    c = engine.client()
    try:
        acc = c.submit(prompt, frames=frames, settings=settings)
        assert c.wait(acc["job"], timeout=120)["state"] == "done"
        out = c.result(acc["job"]).frames
        c.release(acc["job"])
        return out
    finally:
        c.close()


def placed_frames(item):
    return [read_image(p) for p in item.GetMediaPoolItem().files]


def assert_untouched(resolve, before, work_dir):
    assert snapshot(resolve) == before
    assert not work_dir.exists() or not any(work_dir.rglob("*.*")), list(work_dir.rglob("*"))


def test_marked_range_becomes_a_new_version_on_a_new_track(resolve, engine, work_dir):
    project, timeline, pool = current(resolve)
    timeline.GetItemListInTrack("video", 1)[0].gain = 0.8  # a grade on the shot: the render includes it
    render_state = project.render_state()
    expected = engine_edit(engine, rendered(resolve, START + 12, START + 16), "add glasses")

    item = edit(resolve, engine, work_dir)

    assert item.GetTrackTypeAndIndex() == ["video", 2]
    assert (item.GetStart(), item.GetDuration()) == (START + 12, 5)
    assert timeline.GetTrackCount("video") == 2 and timeline.GetTrackName("video", 2) == "ipfacediff v1: add glasses"
    [bin_] = pool.GetRootFolder().GetSubFolderList()
    assert bin_.GetName() == "ipfacediff" and bin_.GetClipList() == [item.GetMediaPoolItem()]
    assert item.GetMediaPoolItem().GetName() == "ipfacediff v1 - add glasses"
    got = placed_frames(item)
    assert len(got) == 5 and all(g.dtype == np.uint16 and np.array_equal(g, e) for g, e in zip(got, expected))
    # The timeline now shows the edit, frame-aligned: record frame 86412 plays result frame 0.
    assert np.allclose(timeline.composite(START + 12), got[0] / 65535, atol=1e-6)
    assert np.allclose(timeline.composite(START + 16), got[4] / 65535, atol=1e-6)
    # Nothing left behind: no render job, Deliver state and page restored, tracks enabled, render frames gone.
    assert project.GetRenderJobList() == [] and project.render_state() == render_state
    assert sorted(project.presets) == ["H.264 Master"] and resolve.GetCurrentPage() == "edit"
    assert all(timeline.GetIsTrackEnabled("video", t) for t in (1, 2))
    files = sorted(p.relative_to(work_dir).parts[-2:] for p in work_dir.rglob("*.tif"))
    assert [d for d, _ in files] == ["frames"] * 5


def test_second_run_is_a_second_version_on_its_own_track(resolve, engine, work_dir):
    _, timeline, pool = current(resolve)
    original = rendered(resolve, START + 12, START + 16)
    first = edit(resolve, engine, work_dir)
    second = edit(resolve, engine, work_dir, prompt="make the hair red")

    assert [timeline.GetTrackName("video", t) for t in (1, 2, 3)] == [
        "Video 1", "ipfacediff v1: add glasses", "ipfacediff v2: make the hair red"]
    assert first.GetTrackTypeAndIndex() == ["video", 2] and second.GetTrackTypeAndIndex() == ["video", 3]
    assert (second.GetStart(), second.GetDuration()) == (first.GetStart(), first.GetDuration())
    assert len(pool.GetRootFolder().GetSubFolderList()[0].GetClipList()) == 2
    # v2 edits the original shot (V1), not v1's result: tracks above the target are off while rendering.
    expected = engine_edit(engine, original, "make the hair red")
    assert all(np.array_equal(g, e) for g, e in zip(placed_frames(second), expected))
    assert timeline.GetIsTrackEnabled("video", 2)


def test_engine_not_running_changes_nothing(resolve, work_dir):
    before = snapshot(resolve)
    address = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(EngineNotRunning) as err:
        edit_marked_range(resolve, "add glasses", engine=address, work_dir=work_dir, **FAST)
    assert f"No ipfacediff engine answers at {address}" in str(err.value)
    assert f"ipfacediff serve --bind {address} --media-root" in str(err.value)
    assert_untouched(resolve, before, work_dir)


def test_cancel_during_render_changes_nothing(resolve, engine, work_dir):
    before = snapshot(resolve)
    seen = []
    with pytest.raises(Cancelled):
        edit(resolve, engine, work_dir, progress=lambda f, m: seen.append(m), cancel=lambda: len(seen) >= 3)
    assert any(m.startswith("Rendering") for m in seen)
    assert_untouched(resolve, before, work_dir)


def test_cancel_during_engine_edit_changes_nothing_and_stops_the_job(resolve, engine, work_dir):
    before = snapshot(resolve)
    seen = []
    with pytest.raises(Cancelled, match="engine"):
        edit(resolve, engine, work_dir, steps=50, progress=lambda f, m: seen.append(m),
             cancel=lambda: any(m.startswith("Engine:") for m in seen))
    assert_untouched(resolve, before, work_dir)
    c = engine.client()
    try:
        listing = c.list()
        assert listing["running"] is None and listing["queue"] == []
    finally:
        c.close()


def test_render_failure_changes_nothing(resolve, engine, work_dir):
    project, _, _ = current(resolve)
    project.render_fault = (2, "Media offline")
    before = snapshot(resolve)
    with pytest.raises(RenderFailed, match="Media offline"):
        edit(resolve, engine, work_dir)
    assert_untouched(resolve, before, work_dir)


def test_refused_settings_and_paths_change_nothing(resolve, engine, work_dir, tmp_path):
    before = snapshot(resolve)
    with pytest.raises(ResolveEditError, match="face_mode"):
        edit(resolve, engine, work_dir, face_mode="nose")
    with pytest.raises(EngineFailed, match="--media-root"):  # a work folder outside the engine's media root
        edit(resolve, engine, tmp_path / "elsewhere")
    assert_untouched(resolve, before, work_dir)
    assert not any((tmp_path / "elsewhere").rglob("*.*"))


def test_dropped_placement_is_undone(resolve, engine, work_dir):
    _, _, pool = current(resolve)
    pool.append_fault = "drop"  # AppendToTimeline returns an item, but nothing lands on the track
    before = snapshot(resolve)
    with pytest.raises(PlacementFailed, match="did not place"):
        edit(resolve, engine, work_dir)
    assert_untouched(resolve, before, work_dir)


def test_source_mode_reads_the_clip_media_directly(resolve, engine, work_dir, shot):
    project, timeline, _ = current(resolve)
    timeline.GetItemListInTrack("video", 1)[0].gain = 0.5  # not applied: the engine reads the camera files
    offset = CLIP_IN + 12 - (CLIP_AT - START)  # source frame of record 86412
    originals = [read_image(Path(shot % (1001 + offset + i))) for i in range(5)]
    expected = engine_edit(engine, originals, "add glasses")
    item = edit(resolve, engine, work_dir, source="source")
    assert (item.GetStart(), item.GetDuration()) == (START + 12, 5)
    assert all(np.array_equal(g, e) for g, e in zip(placed_frames(item), expected))
    assert project.jobs == {} and resolve.GetCurrentPage() == "edit"  # no render at all


def test_half_float_exr_render(resolve, engine, work_dir):
    expected = engine_edit(engine, rendered(resolve, START + 12, START + 16, dtype=np.float16), "add glasses")
    item = edit(resolve, engine, work_dir, image_format="exr")
    got = placed_frames(item)
    assert item.GetMediaPoolItem().files[0].suffix == ".exr"
    # The engine writes path outputs in its working float32 (inline replies come back as float16).
    assert all(g.dtype.kind == "f" and np.array_equal(g.astype(np.float16), e) for g, e in zip(got, expected))


def test_clip_under_the_playhead_without_marks(resolve, engine, work_dir):
    _, timeline, _ = current(resolve)
    timeline.ClearMarkInOut()
    timeline.SetCurrentTimecode("01:00:01:08")  # 86432, inside the second clip (86430..86435)
    item = edit(resolve, engine, work_dir)
    assert (item.GetStart(), item.GetDuration()) == (SECOND_AT, SECOND_LEN)


def test_no_marks_and_no_clip_under_the_playhead(resolve, engine, work_dir):
    _, timeline, _ = current(resolve)
    timeline.ClearMarkInOut()
    timeline.SetCurrentTimecode("01:00:01:02")  # 86426: the gap between the two clips
    before = snapshot(resolve)
    with pytest.raises(NoTarget, match="no In/Out marks and no clip is under the playhead"):
        edit(resolve, engine, work_dir)
    assert_untouched(resolve, before, work_dir)


def test_preview_then_commit_or_discard(resolve, engine, work_dir):
    _, timeline, pool = current(resolve)
    before = snapshot(resolve)
    run = preview_marked_range(resolve, "add glasses", engine=engine.address, work_dir=work_dir, **FAST)
    still = run.preview_clip
    [bin_] = pool.GetRootFolder().GetSubFolderList()
    assert bin_.GetClipList() == [still] and still.GetClipProperty("Type") == "Still"
    assert still.GetName() == "ipfacediff preview v1 - add glasses" and still.files[0].is_file()
    assert timeline.GetTrackCount("video") == 1  # nothing on the timeline yet
    run.discard()
    assert_untouched(resolve, before, work_dir)

    run = preview_marked_range(resolve, "add glasses", engine=engine.address, work_dir=work_dir, frame=0, **FAST)
    item = run.commit()
    assert item.GetTrackTypeAndIndex() == ["video", 2] and item.GetDuration() == 5
    [bin_] = pool.GetRootFolder().GetSubFolderList()
    assert bin_.GetClipList() == [item.GetMediaPoolItem()]  # the preview still is gone


def test_outside_resolve_command_line(resolve, engine, work_dir, monkeypatch, capsys):
    """`ipfacediff resolve-edit` (Studio's external scripting: scriptapp("Resolve"))."""
    from engine.cli import main
    from plugin_resolve import connect

    monkeypatch.setattr(connect, "scriptapp", lambda: resolve)
    code = main(["resolve-edit", "--prompt", "add glasses", "--engine", engine.address, "--work-dir", str(work_dir),
                 "--steps", "2", "--keyframe-interval", "2", "--mode", "full"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == f"placed 5 frames at record frame {START + 12} on video track 2"
    assert "[ipfacediff] 100% Placed 5 frames" in err


def test_a_shot_without_a_face_lands_unchanged_and_the_engine_says_why(resolve, engine, work_dir):
    """face_mode crop on noise: the engine passes the shot through and warns; the user must see it."""
    from engine.editor import NO_FACE
    from plugin_resolve import EditRun

    messages = []
    expected = rendered(resolve, START + 12, START + 16)
    run = EditRun(resolve, "add glasses", engine=engine.address, work_dir=work_dir, settings={"steps": 2},
                  progress=lambda f, m: messages.append(m))
    item = run.prepare().commit()
    assert run.warnings == [NO_FACE]
    assert messages[-1] == ("Placed 5 frames on V2 ('ipfacediff v1: add glasses'). Engine warning: "
                            + NO_FACE.rstrip("."))
    got = placed_frames(item)
    assert len(got) == 5 and all(np.abs(g.astype(int) - e).max() <= 1 for g, e in zip(got, expected))


def test_the_command_line_prints_the_engines_warnings(resolve, engine, work_dir, monkeypatch, capsys):
    from engine.cli import main
    from engine.editor import NO_FACE
    from plugin_resolve import connect

    monkeypatch.setattr(connect, "scriptapp", lambda: resolve)
    code = main(["resolve-edit", "--prompt", "add glasses", "--engine", engine.address, "--work-dir", str(work_dir),
                 "--steps", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"ipfacediff: warning: {NO_FACE}\n" in err
    assert out.strip() == f"placed 5 frames at record frame {START + 12} on video track 2"


def test_plugin_options_never_shadow_a_setting():
    import dataclasses
    import inspect

    from engine.settings import Settings

    fields = {f.name for f in dataclasses.fields(Settings)}
    for fn in (edit_marked_range, preview_marked_range):
        named = {p.name for p in inspect.signature(fn).parameters.values() if p.kind == p.KEYWORD_ONLY}
        assert named and not named & fields


# --- Resolve semantics the plugin must not guess (issue 12) ---------------------------------

def test_marks_on_a_timeline_starting_at_frame_1000_edit_frames_counted_from_its_start(shot, engine, work_dir):
    resolve = build_resolve(shot, start_timecode="00:00:41:16")  # frame 1000 at 24 fps
    _, timeline, _ = current(resolve)
    camera = timeline.GetItemListInTrack("video", 1)[0].GetMediaPoolItem()
    resolve.GetProjectManager().GetCurrentProject().GetMediaPool().AppendToTimeline([
        {"mediaPoolItem": camera, "startFrame": 0, "endFrame": 20, "trackIndex": 1, "recordFrame": 2000}])
    timeline.SetMarkInOut(1005, 1008)
    expected = engine_edit(engine, rendered(resolve, 2005, 2008), "add glasses")
    item = edit(resolve, engine, work_dir)
    assert (item.GetStart(), item.GetDuration()) == (2005, 4)
    assert all(np.array_equal(g, e) for g, e in zip(placed_frames(item), expected))


def test_a_run_from_the_playhead_leaves_no_marks_and_puts_back_the_playhead_and_page(resolve, engine, work_dir):
    _, timeline, _ = current(resolve)
    timeline.ClearMarkInOut()
    timeline.SetCurrentTimecode("01:00:01:08")  # 86432, inside the second clip
    resolve.OpenPage("color")
    item = edit(resolve, engine, work_dir)
    assert (item.GetStart(), item.GetDuration()) == (SECOND_AT, SECOND_LEN)
    assert timeline.GetMarkInOut() == {} and timeline.playhead == START + 32 and resolve.GetCurrentPage() == "color"


def test_the_user_marks_survive_a_render(resolve, engine, work_dir):
    _, timeline, _ = current(resolve)
    timeline.SetMarkInOut(12, 16, "video")
    timeline.SetMarkInOut(0, 40, "audio")
    marks = timeline.GetMarkInOut()
    edit(resolve, engine, work_dir)
    assert timeline.GetMarkInOut() == marks


def test_the_deliver_pages_burn_in_and_subtitles_never_reach_the_engine(resolve, engine, work_dir):
    project, timeline, _ = current(resolve)
    expected = engine_edit(engine, rendered(resolve, START + 12, START + 16), "add glasses")
    project.burn_in = True  # a data burn-in set up in the project, "Same as project" on the Deliver page
    timeline.AddTrack("subtitle")
    project.SetRenderSettings({"ExportSubtitle": True, "SubtitleFormat": "BurnIn", "AddFrameHandles": 2})
    users = project.render_state()
    item = edit(resolve, engine, work_dir)
    assert all(np.array_equal(g, e) for g, e in zip(placed_frames(item), expected))
    assert project.render_state() == users


def test_a_timeline_switched_during_the_run_gets_the_edit_on_the_timeline_it_came_from(resolve, engine, work_dir):
    project, timeline, pool = current(resolve)
    other = pool.CreateEmptyTimeline("Edit 2")
    other_before = snapshot(resolve)["projects"]["Demo Project"]["timelines"][1]

    def switch(fraction, message):
        if message.startswith("Importing"):  # the engine is done; the editor has moved on
            project.SetCurrentTimeline(other)

    item = edit(resolve, engine, work_dir, progress=switch)
    assert item.GetTrackTypeAndIndex() == ["video", 2] and timeline.GetItemListInTrack("video", 2) == [item]
    assert snapshot(resolve)["projects"]["Demo Project"]["timelines"][1] == other_before
    assert project.GetCurrentTimeline() is other  # the editor's choice is kept


def test_a_shot_changed_during_the_run_is_not_overwritten(resolve, engine, work_dir):
    _, timeline, _ = current(resolve)
    after = {}

    def trim(fraction, message):
        if message.startswith("Importing") and not after:
            timeline.GetItemListInTrack("video", 1)[0].duration -= 3  # the editor trims the shot meanwhile
            after.update(snapshot(resolve))

    with pytest.raises(NoTarget, match="changed during the run"):
        edit(resolve, engine, work_dir, progress=trim)
    assert_untouched(resolve, after, work_dir)


def test_a_render_range_in_another_frame_space_stops_before_anything_is_placed(resolve, engine, work_dir,
                                                                              monkeypatch):
    project, _, _ = current(resolve)
    jobs = project.GetRenderJobList
    monkeypatch.setattr(project, "GetRenderJobList", lambda: [
        {**j, "MarkIn": j["MarkIn"] - START, "MarkOut": j["MarkOut"] - START} for j in jobs()])
    before = snapshot(resolve)
    with pytest.raises(RenderFailed, match="frame numbering differs"):
        edit(resolve, engine, work_dir)
    assert_untouched(resolve, before, work_dir)


def test_a_render_folder_reached_through_a_symlink_is_the_same_folder(resolve, engine, work_dir):
    real = work_dir.parent / f"{work_dir.name}-real"
    real.mkdir(parents=True)
    work_dir.parent.mkdir(parents=True, exist_ok=True)
    work_dir.symlink_to(real, target_is_directory=True)
    item = edit(resolve, engine, work_dir)
    assert item.GetDuration() == 5


def test_cleanup_launched_from_the_fairlight_page_runs_where_resolve_allows_it(resolve, engine, work_dir):
    project, timeline, pool = current(resolve)
    resolve.OpenPage("fairlight")
    pool.append_fault = "short"  # the clip lands one frame short: verification fails, the item must go
    before = snapshot(resolve)
    with pytest.raises(PlacementFailed, match="did not place"):
        edit(resolve, engine, work_dir)
    assert_untouched(resolve, before, work_dir)
    assert timeline.refused == [] and resolve.GetCurrentPage() == "fairlight"


def test_launched_from_the_fusion_page_without_marks_asks_for_the_edit_page(resolve, work_dir):
    _, timeline, _ = current(resolve)
    timeline.ClearMarkInOut()
    resolve.OpenPage("fusion")
    before = snapshot(resolve)
    with pytest.raises(NoTarget, match="switch to the Edit page"):
        edit_marked_range(resolve, "add glasses", engine=f"tcp://127.0.0.1:{free_port()}", work_dir=work_dir)
    assert_untouched(resolve, before, work_dir)
