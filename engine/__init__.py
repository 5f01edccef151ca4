"""ipfacediff engine: identity-preserving, text-driven face editing of video (IP-FaceDiff)."""

from engine.editor import EditResult, Editor
from engine.errors import Cancelled, UserError
from engine.settings import Settings

__all__ = ["Editor", "EditResult", "Settings", "UserError", "Cancelled"]
