"""The UIManager window and its controller, driven through a stand-in UIManager (Resolve itself
cannot run here): Edit, Preview then Edit (one render), Cancel, Close, and the settings box."""

from __future__ import annotations

import time

import pytest

from fake_resolve import FakeResolve, snapshot
from fake_uimanager import FakeDispatcher, FakeUI
from plugin_resolve import ui as rui
from plugin_resolve.errors import ResolveEditError


def window(resolve, engine, work_dir, monkeypatch):
    monkeypatch.setenv("IPFACEDIFF_RESOLVE_DIR", str(work_dir))
    fake = FakeUI()
    w = rui.Window(resolve, fake, FakeDispatcher(fake), engine.address)
    items = w.items
    items["Prompt"].Text = "add glasses"
    items["Settings"].Text = "steps=2 face_mode=full"
    return w, items


def wait_idle(w, timeout=60.0):
    end = time.monotonic() + timeout
    while w.controller.thread is not None and w.controller.thread.is_alive():
        assert time.monotonic() < end, "the worker did not finish"
        time.sleep(0.02)


def test_window_layout_and_edit(resolve, engine, work_dir, monkeypatch):
    w, items = window(resolve, engine, work_dir, monkeypatch)
    assert set(items) >= {"Prompt", "Source", "Format", "Track", "Engine", "Settings", "Status", "Preview", "Edit",
                          "Cancel", "Close"}
    assert items["Source"].items[0].startswith("Rendered timeline") and items["Format"].items == [
        "16-bit TIFF", "Half-float EXR"]
    assert items["Engine"].Text == engine.address and items["Cancel"].Enabled is False
    w.win.click("Edit")
    wait_idle(w)
    assert items["Status"].Text.startswith("Done: 5 frames from record frame 86412 on V2"), items["Status"].Text
    assert items["Edit"].Enabled and not items["Cancel"].Enabled


def test_the_status_line_shows_the_engines_warning(resolve, engine, work_dir, monkeypatch):
    from engine.editor import NO_FACE

    w, items = window(resolve, engine, work_dir, monkeypatch)
    items["Settings"].Text = "steps=2"  # face_mode crop on a noise clip: no face, passed through
    w.win.click("Edit")
    wait_idle(w)
    assert items["Status"].Text == ("Done: 5 frames from record frame 86412 on V2. Toggle that track to compare; "
                                    f"delete it to undo. Engine warning: {NO_FACE}"), items["Status"].Text


def test_preview_then_edit_renders_once(resolve, engine, work_dir, monkeypatch):
    project = resolve.GetProjectManager().GetCurrentProject()
    added = []
    original = project.AddRenderJob
    monkeypatch.setattr(project, "AddRenderJob", lambda: added.append(1) or original())
    w, items = window(resolve, engine, work_dir, monkeypatch)
    w.win.click("Preview")
    wait_idle(w)
    assert items["Status"].Text.startswith("Preview ready: 'ipfacediff preview v1 - add glasses'")
    w.win.click("Edit")
    wait_idle(w)
    assert items["Status"].Text.startswith("Done:") and len(added) == 1


def test_close_drops_an_uncommitted_preview_and_exits(resolve, engine, work_dir, monkeypatch):
    before = snapshot(resolve)
    w, items = window(resolve, engine, work_dir, monkeypatch)
    w.win.click("Preview")
    wait_idle(w)
    w.disp.script = lambda win: win.click("Close")
    w.run()
    assert w.disp.exited and snapshot(resolve) == before


def test_cancel_button(resolve, engine, work_dir, monkeypatch):
    before = snapshot(resolve)
    w, items = window(resolve, engine, work_dir, monkeypatch)
    items["Settings"].Text = "steps=50 face_mode=full"
    w.win.click("Edit")
    end = time.monotonic() + 60
    while "Engine:" not in items["Status"].Text:
        assert time.monotonic() < end
        time.sleep(0.02)
    w.win.click("Cancel")
    wait_idle(w)
    assert items["Status"].Text.startswith("Cancelled during the engine's edit")
    assert snapshot(resolve) == before


def test_main_without_uimanager_prints_what_to_do(capsys):
    assert rui.main({"resolve": FakeResolve(studio=False)}) == 1
    assert "UIManager is not available" in capsys.readouterr().out


def test_parse_settings():
    assert rui.parse_settings("steps=30 guidance_scale=7.5, face_mode=crop keyframes=[0,8]") == {
        "steps": 30, "guidance_scale": 7.5, "face_mode": "crop", "keyframes": [0, 8]}
    assert rui.parse_settings('negative_prompt="a person\'s blur" resolution=null') == {
        "negative_prompt": "a person's blur", "resolution": None}
    assert rui.parse_settings("") == {}
    with pytest.raises(ResolveEditError, match="steps=30"):
        rui.parse_settings("steps 30")
