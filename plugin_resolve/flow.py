"""One edit of the marked range, from Resolve's timeline to a new version on a new track.

In: the Resolve scripting object, a prompt, engine address, track, source ("render" or
"source"), image format ("tif" 16-bit or "exr" half), work folder, progress and cancel
callables, and edit settings (the fields of engine.settings.Settings, validated here and
again by the engine). Out: `edit_marked_range(...) -> TimelineItem` or, for a look first,
`preview_marked_range(...) -> EditRun` whose `.preview_clip` is a still in the `ipfacediff`
bin and whose `.commit()` / `.discard()` finish it; `EditRun.warnings` holds the engine's
warnings of its last job (also in the last progress message). Any failure or cancel undoes every
change (tracks, items, clips, bin, render jobs, files) before the error is raised.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from engine.errors import UserError
from engine.prompts import prompt_problem
from engine.settings import Settings
from plugin_resolve.engine_link import EngineLink
from plugin_resolve.errors import DEFAULT_ENGINE, Cancelled, NoResolve, PlacementFailed, ResolveEditError
from plugin_resolve.place import Placement, sequence_clip_info
from plugin_resolve.render import render_range
from plugin_resolve.source import source_input
from plugin_resolve.target import Target, find_target
from plugin_resolve.workdir import RunFolder, clip_name, next_version, track_name, work_root

Progress = Callable[[float, str], None]
# Stage weights of the overall progress bar: render, engine, import.
_RENDER, _ENGINE = (0.0, 0.3), (0.3, 0.95)


def _no_progress(fraction: float, message: str) -> None:
    pass


def _never() -> bool:
    return False


def check_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Validate against engine.settings.Settings (the one declaration of the fields); returns a
    plain dict to send (only what the caller set, so the engine's defaults apply)."""
    try:
        Settings.from_dict(dict(settings))
    except UserError as exc:
        raise ResolveEditError(f"Invalid edit setting: {exc}") from None
    return {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}


class EditRun:
    """prepare() → [preview()] → commit() | discard(); also a context manager that discards."""

    def __init__(self, resolve: Any, prompt: str, *, engine: str = DEFAULT_ENGINE, track: int | None = None,
                 source: str = "render", image_format: str = "tif", work_dir: str | os.PathLike | None = None,
                 progress: Progress | None = None, cancel: Callable[[], bool] | None = None,
                 keys: str | None = None, settings: dict[str, Any] | None = None):
        problem = prompt_problem(prompt)
        if problem is not None:
            raise ResolveEditError(problem[0].upper() + problem[1:])
        if source not in ("render", "source"):
            raise ResolveEditError(f"source must be 'render' (Deliver-page render) or 'source' (the clip's media), "
                                   f"not {source!r}.")
        if image_format not in ("tif", "exr"):
            raise ResolveEditError(f"image_format must be 'tif' (16-bit TIFF) or 'exr' (half float), "
                                   f"not {image_format!r}.")
        if resolve is None:
            raise NoResolve("No Resolve scripting object was given (scriptapp('Resolve') returned None?).")
        self.resolve, self.prompt, self.source, self.image_format = resolve, prompt.strip(), source, image_format
        self.track = track
        self.settings = check_settings(settings or {})
        self.root = work_root(work_dir)
        self.progress, self.cancel = progress or _no_progress, cancel or _never
        self.link = EngineLink(engine, str(self.root), keys=keys)
        self.folder: RunFolder | None = None
        self.target: Target | None = None
        self.input: tuple[str, tuple[int, int] | None] | None = None
        self.preview_clip: Any = None
        self._preview = None
        self.warnings: list[str] = []  # the engine's, for the last preview or commit

    # --- stages --------------------------------------------------------------------------
    def prepare(self) -> "EditRun":
        """Find the target, reach the engine, and get the frames (render or source)."""
        try:
            self._prepare()
        except BaseException as exc:
            self.discard()
            raise _as_cancel(exc)
        return self

    def _prepare(self) -> None:
        pm = self.resolve.GetProjectManager()
        self.project = pm.GetCurrentProject() if pm else None
        if not self.project:
            raise NoResolve("No project is open in Resolve.")
        self.timeline = self.project.GetCurrentTimeline()
        if not self.timeline:
            raise NoResolve("No timeline is open; open the timeline that holds the shot.")
        self.pool = self.project.GetMediaPool()
        self.target = find_target(self.timeline, self.track, self.resolve.GetCurrentPage())
        if self.source == "source":
            path, rng = source_input(self.timeline, self.target)
        self.link.connect()  # before rendering: an engine that is down costs the editor nothing
        self.version = next_version(self.timeline)
        self.folder = RunFolder(self.root, self.project.GetName(), self.timeline.GetName(), self.version,
                                self.prompt).create()
        if self.source == "source":
            self.input = (path, rng)
            return
        lo, hi = _RENDER
        frames = render_range(self.resolve, self.project, self.timeline, self.target, self.folder.render,
                              f"v{self.version:03d}", self.image_format,
                              progress=lambda f, m: self.progress(lo + (hi - lo) * f, m), cancel=self.cancel)
        self.input = (str(self.folder.render), None)
        self.progress(hi, f"Rendered {len(frames)} frames")

    def preview(self, frame: int | None = None) -> Any:
        """Edit one frame (default: the middle one) as its own keyframe; import it as a still."""
        if self.input is None:
            self.prepare()
        index = self.target.count // 2 if frame is None else frame
        if not 0 <= index < self.target.count:
            raise ResolveEditError(f"The preview frame must be 0 to {self.target.count - 1} (within the range).")
        self._drop_preview()
        try:
            paths = self._engine(preview_frame=index, out=self.folder.preview)
            self._preview = Placement(self.resolve, self.pool, self.timeline)
            self.preview_clip = self._preview.import_media(paths[:1], clip_name(self.version, self.prompt, True))
            self.pool.SetSelectedClip(self.preview_clip)
        except BaseException as exc:
            self._drop_preview()
            raise _as_cancel(exc)
        self.progress(1.0, f"Preview of frame {self.target.first + index} is in the '{self._preview.bin.GetName()}' "
                           "bin; commit to edit the whole range" + warned(self.warnings))
        return self.preview_clip

    def commit(self) -> Any:
        """Edit the whole range and place it on a new track; returns the new TimelineItem."""
        if self.input is None:
            self.prepare()
        placement = Placement(self.resolve, self.pool, self.timeline)
        users = None
        try:
            paths = self._engine(out=self.folder.frames)
            if len(paths) != self.target.count:
                raise ResolveEditError(f"The engine returned {len(paths)} frames for a {self.target.count}-frame "
                                       "range.")
            self.progress(0.96, "Importing the edited frames")
            clip = placement.import_media([sequence_clip_info(paths)], clip_name(self.version, self.prompt),
                                          frames=self.target.count)
            if self.cancel():
                raise Cancelled("the import")
            users = self._back_to_our_timeline()
            self.target.check_unchanged(self.timeline)
            item = placement.place_on_new_track(clip, self.target.first, self.target.count,
                                                track_name(self.version, self.prompt))
        except BaseException as exc:
            placement.undo()
            self.discard()
            raise _as_cancel(exc)
        finally:
            if users is not None:
                self.project.SetCurrentTimeline(users)
        self._drop_preview()
        self.folder.finish()
        self.link.close()
        name = track_name(self.version, self.prompt)
        placed = f"Placed {self.target.count} frames on V{placement.track} ('{name}')"
        self.progress(1.0, placed + warned(self.warnings))
        return item

    def discard(self) -> None:
        """Undo everything this run added (preview still, files, engine jobs)."""
        self._drop_preview()
        self.link.close()
        if self.folder is not None:
            self.folder.discard()
            self.folder = None
        self.input = None

    # --- helpers -------------------------------------------------------------------------
    def _back_to_our_timeline(self) -> Any:
        """AppendToTimeline places onto the *current* timeline: if the editor switched timelines during
        the run, switch back to the one the range came from; returns theirs (to switch to afterwards)."""
        current = self.project.GetCurrentTimeline()
        ours = self.timeline.GetUniqueId()
        if current and current.GetUniqueId() == ours:
            return None
        now = self.project.GetCurrentTimeline() if self.project.SetCurrentTimeline(self.timeline) else None
        if not now or now.GetUniqueId() != ours:
            raise PlacementFailed(f"The current timeline changed during the run and Resolve would not switch back to "
                                  f"'{self.timeline.GetName()}', where the range came from; nothing was placed.")
        return current

    def _engine(self, *, out, preview_frame: int | None = None) -> list[str]:
        path, rng = self.input
        output = {"mode": "path", "dir": str(out), "format": self.image_format}
        if preview_frame is None:
            output["start"] = self.target.first
        lo, hi = _ENGINE
        edited = self.link.run(self.prompt, self.settings, path, rng, output, preview_frame=preview_frame,
                               progress=lambda f, m: self.progress(lo + (hi - lo) * f, m), cancel=self.cancel)
        self.warnings = edited.warnings
        return edited.paths

    def _drop_preview(self) -> None:
        if self._preview is not None:
            self._preview.undo()
            self._preview = None
        self.preview_clip = None
        if self.folder is not None:
            self.folder.drop(self.folder.preview)

    def __enter__(self) -> "EditRun":
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is not None:
            self.discard()


def warned(warnings: list[str]) -> str:
    """The engine's warnings to append to a message that ends without a full stop ("" when none)."""
    return "".join(f". Engine warning: {w.rstrip('.')}" for w in warnings)


def _as_cancel(exc: BaseException) -> BaseException:
    return Cancelled() if isinstance(exc, KeyboardInterrupt) else exc


def edit_marked_range(resolve: Any, prompt: str, *, engine: str = DEFAULT_ENGINE, track: int | None = None,
                      source: str = "render", image_format: str = "tif", work_dir: str | os.PathLike | None = None,
                      progress: Progress | None = None, cancel: Callable[[], bool] | None = None,
                      keys: str | None = None, **settings: Any) -> Any:
    """Edit the timeline's In/Out range (or the clip under the playhead) and return the new
    TimelineItem on a new track above, at the same record frame; raises ResolveEditError."""
    run = EditRun(resolve, prompt, engine=engine, track=track, source=source, image_format=image_format,
                  work_dir=work_dir, progress=progress, cancel=cancel, keys=keys, settings=settings)
    return run.prepare().commit()


def preview_marked_range(resolve: Any, prompt: str, *, frame: int | None = None, engine: str = DEFAULT_ENGINE,
                         track: int | None = None, source: str = "render", image_format: str = "tif",
                         work_dir: str | os.PathLike | None = None, progress: Progress | None = None,
                         cancel: Callable[[], bool] | None = None, keys: str | None = None,
                         **settings: Any) -> EditRun:
    """Render (or locate) the range, edit one frame, import it as a still; returns the run:
    `.preview_clip` is the still, `.commit()` edits the whole range, `.discard()` drops it all."""
    run = EditRun(resolve, prompt, engine=engine, track=track, source=source, image_format=image_format,
                  work_dir=work_dir, progress=progress, cancel=cancel, keys=keys, settings=settings)
    run.prepare()
    try:
        run.preview(frame)
    except BaseException:
        run.discard()
        raise
    return run
