"""What can go wrong in a Resolve edit, each as one plain sentence for the editor.

In: the facts of the failure (engine address, work folder, Resolve's own error text). Out:
exceptions, all subclasses of `ResolveEditError`, whose str() is the message to show. Every
one is raised only after the timeline, media pool and render queue are back as they were.
"""

from __future__ import annotations

from server.protocol import DEFAULT_ADDRESS as DEFAULT_ENGINE


def start_command(address: str, media_root: str | None) -> str:
    """The shell command that starts an engine this plugin can use."""
    parts = ["ipfacediff serve"]
    if address != DEFAULT_ENGINE:
        parts.append(f"--bind {address}")
    if media_root:
        parts.append(f'--media-root "{media_root}"')
    return " ".join(parts)


class ResolveEditError(Exception):
    """Base class: the edit did not happen; the message says why and what to do."""


class NoResolve(ResolveEditError):
    """No Resolve scripting object (scriptapp returned None, or no project / timeline open)."""


class NoTarget(ResolveEditError):
    """No In/Out marks and no clip under the playhead on the chosen track."""


class EngineNotRunning(ResolveEditError):
    def __init__(self, address: str, media_root: str | None):
        super().__init__(f"No ipfacediff engine answers at {address}. Start one in a terminal with: "
                         f"{start_command(address, media_root)}")
        self.address = address


class EngineFailed(ResolveEditError):
    """The engine refused the job or reported it failed (its reason is in the message)."""


class RenderFailed(ResolveEditError):
    """The Deliver-page render of the range did not produce every frame."""


class PlacementFailed(ResolveEditError):
    """Importing the result or placing it on the new track did not work out."""


class Cancelled(ResolveEditError):
    def __init__(self, during: str = "the edit"):
        super().__init__(f"Cancelled during {during}; the timeline and media pool are as they were.")
