"""ipfacediff engine: identity-preserving, text-driven face editing of video (IP-FaceDiff).

Names are imported lazily, so `engine.settings` and `engine.io` load without torch.
"""

from importlib import import_module

_EXPORTS = {"Editor": "engine.editor", "EditResult": "engine.editor", "Settings": "engine.settings",
            "UserError": "engine.errors", "Cancelled": "engine.errors"}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
