"""Install the menu script into Resolve's Scripts/Utility folder.

In: user or system scope (or an explicit Scripts folder), the platform, the engine address
the window should start with. Out: the written `ipfacediff.py` path. The file is
plugin_resolve/resolve_menu.py with its INSTALL dict filled in (package root, the
site-packages holding pyzmq/msgpack and that Python's version). Folders are the ones Resolve's
scripting README lists for Linux, macOS and Windows.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SCRIPT_NAME = "ipfacediff.py"


def scripts_dir(system: bool = False, platform: str = sys.platform, env: dict | None = None,
                home: Path | None = None) -> Path:
    """Resolve's Fusion/Scripts/Utility folder (listed under Workspace > Scripts on every page)."""
    env = os.environ if env is None else env
    home = Path(home or Path.home())
    if platform == "darwin":
        base = Path("/Library") if system else home / "Library"
        scripts = base / "Application Support" / "Blackmagic Design" / "DaVinci Resolve" / "Fusion" / "Scripts"
    elif platform.startswith("win"):
        if system:
            root = env.get("PROGRAMDATA", r"C:\ProgramData")
            scripts = Path(root) / "Blackmagic Design" / "DaVinci Resolve" / "Fusion" / "Scripts"
        else:
            root = env.get("APPDATA") or str(home / "AppData" / "Roaming")
            scripts = Path(root) / "Blackmagic Design" / "DaVinci Resolve" / "Support" / "Fusion" / "Scripts"
    elif system:
        resolve = Path("/opt/resolve")
        if not resolve.exists() and Path("/home/resolve").exists():  # ISO installs
            resolve = Path("/home/resolve")
        scripts = resolve / "Fusion" / "Scripts"
    else:
        scripts = home / ".local" / "share" / "DaVinciResolve" / "Fusion" / "Scripts"
    return scripts / "Utility"


def launcher_text(engine: str | None = None) -> str:
    import msgpack
    import zmq

    install = {
        "package_root": str(Path(__file__).resolve().parent.parent),  # holds plugin_resolve, server, engine
        "site_packages": sorted({str(Path(m.__file__).resolve().parent.parent) for m in (zmq, msgpack)}),
        "python": "%d.%d" % sys.version_info[:2],
        "engine": engine,
    }
    template = (Path(__file__).parent / "resolve_menu.py").read_text(encoding="utf-8")
    marker = "INSTALL = {}  # filled in by `ipfacediff install-resolve`"
    assert marker in template
    return template.replace(marker, f"INSTALL = {install!r}  # written by `ipfacediff install-resolve`")


def install(system: bool = False, dest: Path | None = None, engine: str | None = None) -> Path:
    folder = Path(dest) if dest else scripts_dir(system)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / SCRIPT_NAME
    tmp = folder / f".{SCRIPT_NAME}.tmp{os.getpid()}"
    tmp.write_text(launcher_text(engine), encoding="utf-8")
    os.replace(tmp, target)
    return target
