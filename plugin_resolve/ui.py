"""The ipfacediff window in Resolve (Fusion UIManager), and its console fallback.

In: the menu script's globals (`resolve`, `fu`/`fusion`, `bmd`). Out: a window with a prompt,
the frame source, image format, track, engine address and settings, Preview / Edit /
Cancel / Close buttons and a status line (layout in docs/resolve.md). Work runs on a
background thread so the window stays live and Cancel works; the script does not return
(which would end that thread) until the window is closed. Without UIManager (free edition,
-nogui) it prints what to do instead. `Controller` holds the logic and is testable alone.
"""

from __future__ import annotations

import json
import re
import threading
import traceback
from typing import Any, Callable

from plugin_resolve import connect
from plugin_resolve.errors import DEFAULT_ENGINE, NoResolve, ResolveEditError
from plugin_resolve.flow import EditRun, preview_marked_range, warned
from plugin_resolve.progress import CancelFlag

SOURCES = [("render", "Rendered timeline (grades and effects)"), ("source", "Source media (engine reads the clip)")]
FORMATS = [("tif", "16-bit TIFF"), ("exr", "Half-float EXR")]
_PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\[[^\]]*\]|\"[^\"]*\"|'[^']*'|[^\s,;]+)")


def parse_settings(text: str) -> dict[str, Any]:
    """`steps=30 guidance_scale=7.5 face_mode=crop keyframes=[0,8]` -> dict (validated later by Settings)."""
    text = (text or "").strip()
    out: dict[str, Any] = {}
    rest = _PAIR.sub("", text)
    if rest.strip(" ,;\n\t"):
        raise ResolveEditError(f"Settings must look like 'steps=30 guidance_scale=7.5'; could not read "
                               f"'{rest.strip()}'.")
    for key, raw in _PAIR.findall(text):
        try:
            out[key] = raw[1:-1] if raw[:1] == "'" else json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


class Controller:
    """Preview / Edit / Cancel / Close, run on a worker thread; `show` and `busy` update the view."""

    def __init__(self, resolve: Any, show: Callable[[str], None], busy: Callable[[bool], None]):
        self.resolve, self.show, self.busy = resolve, show, busy
        self.cancel = CancelFlag()
        self.thread: threading.Thread | None = None
        self.pending: EditRun | None = None  # a previewed run waiting for Edit
        self.pending_key: tuple | None = None
        self.last_result: Any = None

    def _options(self, p: dict[str, Any]) -> dict[str, Any]:
        track = int(p.get("track") or 0)
        return {"engine": (p.get("engine") or DEFAULT_ENGINE).strip(), "track": track or None,
                "source": p.get("source", "render"), "image_format": p.get("image_format", "tif"),
                "progress": lambda f, m: self.show(f"{f * 100:3.0f}%  {m}"), "cancel": self.cancel}

    def _start(self, work: Callable[[], str]) -> bool:
        if self.thread is not None and self.thread.is_alive():
            self.show("Busy: wait for the current step, or press Cancel.")
            return False
        self.cancel.clear()
        self.busy(True)

        def target() -> None:
            try:
                self.show(work())
            except ResolveEditError as exc:
                self.show(str(exc))
            except Exception as exc:  # a bug: say so in one line, details on the console
                traceback.print_exc()
                self.show(f"Unexpected error ({type(exc).__name__}: {exc}); details are in the Console.")
            finally:
                self.busy(False)

        self.thread = threading.Thread(target=target, name="ipfacediff", daemon=True)
        self.thread.start()
        return True

    def preview(self, params: dict[str, Any]) -> bool:
        def work() -> str:
            self.drop_pending()
            run = preview_marked_range(self.resolve, params.get("prompt", ""), **self._options(params),
                                       **parse_settings(params.get("settings", "")))
            self.pending, self.pending_key = run, _key(params)
            return (f"Preview ready: '{run.preview_clip.GetName()}' is selected in the ipfacediff bin. "
                    "Press Edit to edit the whole range, or Close to drop it" + warned(run.warnings) + ".")
        return self._start(work)

    def edit(self, params: dict[str, Any]) -> bool:
        def work() -> str:
            if self.pending is not None and self.pending_key == _key(params):
                run, self.pending = self.pending, None
            else:
                self.drop_pending()
                settings = parse_settings(params.get("settings", ""))
                run = EditRun(self.resolve, params.get("prompt", ""), settings=settings, **self._options(params))
            item = run.commit()
            self.last_result = item
            track = item.GetTrackTypeAndIndex() or ["video", "?"]
            return (f"Done: {item.GetDuration()} frames from record frame {item.GetStart()} on V{track[1]}. "
                    "Toggle that track to compare; delete it to undo" + warned(run.warnings) + ".")
        return self._start(work)

    def stop(self) -> None:
        self.cancel.set()
        self.show("Cancelling...")

    def drop_pending(self) -> None:
        if self.pending is not None:
            self.pending.discard()
            self.pending = None

    def close(self, timeout: float = 120.0) -> None:
        """Cancel what runs, wait for it to clean up, drop an uncommitted preview."""
        self.cancel.set()
        if self.thread is not None:
            self.thread.join(timeout)
        self.drop_pending()


def _key(params: dict[str, Any]) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in params.items()))


class Window:
    """The UIManager window (see docs/resolve.md for the layout)."""

    def __init__(self, resolve: Any, ui: Any, disp: Any, engine: str | None = None):
        self.ui, self.disp = ui, disp
        row = lambda label, widget: ui.HGroup({"Weight": 0}, [ui.Label({"Text": label, "Weight": 0.25}), widget])
        self.win = disp.AddWindow(
            {"ID": "ipfacediff", "WindowTitle": "ipfacediff - edit faces from a prompt",
             "Geometry": [200, 200, 560, 330]},
            ui.VGroup({"Spacing": 6}, [
                row("Prompt", ui.LineEdit({"ID": "Prompt", "PlaceholderText": "add glasses", "Weight": 0.75})),
                row("Frames from", ui.ComboBox({"ID": "Source", "Weight": 0.75})),
                row("Image format", ui.ComboBox({"ID": "Format", "Weight": 0.75})),
                row("Track (0 = auto)", ui.SpinBox({"ID": "Track", "Minimum": 0, "Maximum": 99, "Value": 0,
                                                    "Weight": 0.75})),
                row("Engine", ui.LineEdit({"ID": "Engine", "Text": engine or DEFAULT_ENGINE, "Weight": 0.75})),
                row("Settings", ui.LineEdit({"ID": "Settings", "PlaceholderText": "steps=50 guidance_scale=7.5",
                                             "Weight": 0.75})),
                ui.Label({"ID": "Status", "Text": "Mark In/Out (or park on a clip), type a prompt, then Preview or "
                                                  "Edit.", "WordWrap": True, "Weight": 1}),
                ui.HGroup({"Weight": 0}, [ui.Button({"ID": "Preview", "Text": "Preview"}),
                                          ui.Button({"ID": "Edit", "Text": "Edit"}),
                                          ui.Button({"ID": "Cancel", "Text": "Cancel", "Enabled": False}),
                                          ui.Button({"ID": "Close", "Text": "Close"})]),
            ]))
        self.items = self.win.GetItems()
        for _, text in SOURCES:
            self.items["Source"].AddItem(text)
        for _, text in FORMATS:
            self.items["Format"].AddItem(text)
        self.controller = Controller(resolve, self._show, self._busy)
        on = self.win.On
        on.Preview.Clicked = lambda ev: self.controller.preview(self.params())
        on.Edit.Clicked = lambda ev: self.controller.edit(self.params())
        on.Cancel.Clicked = lambda ev: self.controller.stop()
        on.Close.Clicked = self._close
        on.ipfacediff.Close = self._close

    def params(self) -> dict[str, Any]:
        it = self.items
        return {"prompt": it["Prompt"].Text, "source": SOURCES[int(it["Source"].CurrentIndex or 0)][0],
                "image_format": FORMATS[int(it["Format"].CurrentIndex or 0)][0], "track": int(it["Track"].Value or 0),
                "engine": it["Engine"].Text, "settings": it["Settings"].Text}

    def _show(self, text: str) -> None:
        self.items["Status"].Text = text

    def _busy(self, on: bool) -> None:
        for name in ("Preview", "Edit"):
            self.items[name].Enabled = not on
        self.items["Cancel"].Enabled = on

    def _close(self, ev: Any = None) -> None:
        self._show("Closing: cancelling and cleaning up...")
        self.controller.close()
        self.disp.ExitLoop()

    def run(self) -> None:
        self.win.Show()
        try:
            self.disp.RunLoop()
        finally:
            self.controller.close()
            self.win.Hide()


def main(env: dict[str, Any] | None = None, engine: str | None = None) -> int:
    """Menu-script entry: open the window, or explain why there is none."""
    env = env or {}
    try:
        resolve = connect.from_globals(env)
    except NoResolve as exc:
        print(f"ipfacediff: {exc}")
        return 1
    ui = connect.ui_manager(resolve, env)
    bmd = env.get("bmd")
    if ui is None or bmd is None:
        print(f"ipfacediff: {connect.NO_UIMANAGER}")
        return 1
    Window(resolve, ui, bmd.UIDispatcher(ui), engine).run()
    return 0
