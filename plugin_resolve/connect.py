"""Get hold of Resolve and of Fusion's UIManager, or say exactly why not and what to do.

In: nothing (outside Resolve: the DaVinciResolveScript module, found through the documented
RESOLVE_SCRIPT_API / PYTHONPATH or the default install folders) or the globals a menu script
gets (`resolve`, `fusion`/`fu`, `bmd`, `app`). Out: the Resolve object, the UIManager (None on
the free edition), or `NoResolve` with the plain-words reason.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from plugin_resolve.errors import NoResolve

SCRIPTAPP_NONE = (
    "DaVinciResolveScript.scriptapp('Resolve') returned None. Either Resolve is not running (start it; on a "
    "machine without a display start it with -nogui), or this is the free DaVinci Resolve: scripting from "
    "outside Resolve needs DaVinci Resolve Studio. In Studio, set Preferences > System > General > "
    "'External scripting using' to Local, then try again.")
NO_UIMANAGER = (
    "Fusion's UIManager is not available (it is None in the free DaVinci Resolve), so ipfacediff cannot open its "
    "window. Run the edit from the Console instead (Workspace > Console, Py3): "
    "import plugin_resolve; plugin_resolve.edit_marked_range(resolve, 'add glasses') - progress prints there. "
    "Since Resolve 21.1 Python scripting itself needs DaVinci Resolve Studio.")
NO_MODULE = (
    "The DaVinciResolveScript module is not importable. Set RESOLVE_SCRIPT_API, RESOLVE_SCRIPT_LIB and add "
    "$RESOLVE_SCRIPT_API/Modules to PYTHONPATH as Resolve's scripting README describes (defaults: {api}).")


def default_api_dir(platform: str = sys.platform) -> str:
    if platform == "darwin":
        return "/Library/Application Support/Blackmagic Design/DaVinci Resolve/Developer/Scripting"
    if platform.startswith("win"):
        return os.path.join(os.environ.get("PROGRAMDATA", r"C:\ProgramData"), "Blackmagic Design",
                            "DaVinci Resolve", "Support", "Developer", "Scripting")
    return "/opt/resolve/Developer/Scripting"


def scriptapp() -> Any:
    """The Resolve object for a script running outside Resolve (Studio only)."""
    try:
        dvr = importlib.import_module("DaVinciResolveScript")
    except ImportError:
        api = os.environ.get("RESOLVE_SCRIPT_API") or default_api_dir()
        modules = os.path.join(api, "Modules")
        if modules not in sys.path:
            sys.path.append(modules)
        try:
            dvr = importlib.import_module("DaVinciResolveScript")
        except ImportError:
            raise NoResolve(NO_MODULE.format(api=api)) from None
    app = dvr.scriptapp("Resolve")
    if app is None:
        raise NoResolve(SCRIPTAPP_NONE)
    return app


def from_globals(env: dict[str, Any]) -> Any:
    """The Resolve object inside Resolve (Console or Workspace > Scripts)."""
    if env.get("resolve") is not None:
        return env["resolve"]
    bmd = env.get("bmd")
    if bmd is not None:
        app = bmd.scriptapp("Resolve")
        if app is not None:
            return app
    for name in ("fusion", "fu", "app"):
        obj = env.get(name)
        if obj is not None and callable(getattr(obj, "GetResolve", None)):
            app = obj.GetResolve()
            if app is not None:
                return app
    return scriptapp()


def ui_manager(resolve: Any, env: dict[str, Any] | None = None) -> Any:
    """Fusion's UIManager, or None (free edition, or -nogui)."""
    fusion = (env or {}).get("fusion") or (env or {}).get("fu")
    if fusion is None:
        try:
            fusion = resolve.Fusion()
        except Exception:
            return None
    return getattr(fusion, "UIManager", None) if fusion is not None else None
