"""ipfacediff for DaVinci Resolve: edit the marked range from a prompt, as a new version on a new track.

In: the Resolve scripting object (`resolve` in Resolve's console and menu scripts, or
`DaVinciResolveScript.scriptapp("Resolve")` outside), a prompt and edit settings. Out:
`edit_marked_range(...) -> TimelineItem`; `preview_marked_range(...) -> EditRun` for a
one-frame look first. Needs only the standard library, pyzmq and msgpack (plus the torch-free
`engine.settings` and `server.client`); the engine is reached only through the protocol.
Runs on Python 3.8+ (Resolve's own Python). Menu script: `ipfacediff install-resolve`.
Docs: docs/resolve.md.
"""

from plugin_resolve.errors import (DEFAULT_ENGINE, Cancelled, EngineFailed, EngineNotRunning, NoResolve, NoTarget,
                                   PlacementFailed, RenderFailed, ResolveEditError)
from plugin_resolve.flow import EditRun, edit_marked_range, preview_marked_range

__all__ = ["edit_marked_range", "preview_marked_range", "EditRun", "DEFAULT_ENGINE", "ResolveEditError",
           "Cancelled", "EngineFailed", "EngineNotRunning", "NoResolve", "NoTarget", "PlacementFailed",
           "RenderFailed"]
