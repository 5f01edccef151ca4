"""`ipfacediff install-ofx`: build the OpenFX bundle with CMake and put it where hosts look.

In: a destination folder (default: the first folder of $OFX_PLUGIN_PATH, else the platform's
standard OFX folder: /usr/OFX/Plugins, /Library/OFX/Plugins, or Common Files\\OFX\\Plugins on
Windows) and a build folder (default build/plugin_ofx in the source tree). Out:
DEST/ipfacediff.ofx.bundle, written by CMake's own install target (`cmake --install`), so
this command and a manual CMake install give the same layout. Needs cmake, a C++17 compiler,
libzmq and msgpack-cxx (see docs/ofx.md); it runs from a source checkout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

BUNDLE = "ipfacediff.ofx.bundle"
SOURCE = Path(__file__).resolve().parent


def default_dest(platform: str = sys.platform, env: dict | None = None) -> Path:
    """Where hosts look: $OFX_PLUGIN_PATH first (':'-separated on Linux, ';' on macOS and
    Windows, as the OFX packaging rules say), then the standard folder of the platform."""
    env = os.environ if env is None else env
    sep = ":" if platform.startswith("linux") else ";"
    for folder in env.get("OFX_PLUGIN_PATH", "").split(sep):
        if folder.strip():
            return Path(folder.strip())
    if platform == "darwin":
        return Path("/Library/OFX/Plugins")
    if platform.startswith("win"):
        return Path(env.get("COMMONPROGRAMFILES", r"C:\Program Files\Common Files")) / "OFX" / "Plugins"
    return Path("/usr/OFX/Plugins")


def install(dest: Path | None = None, build_dir: Path | None = None) -> Path:
    from engine.errors import UserError

    dest = Path(dest) if dest else default_dest()
    build_dir = Path(build_dir) if build_dir else SOURCE.parent / "build" / "plugin_ofx"
    if shutil.which("cmake") is None:
        raise UserError("cmake is not installed; the OFX plugin is built with CMake (see docs/ofx.md).")
    steps = (["cmake", "-S", str(SOURCE), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release"],
             ["cmake", "--build", str(build_dir), "--config", "Release", "--parallel", "2"],
             ["cmake", "--install", str(build_dir), "--config", "Release", "--prefix", str(dest)])
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-12:]
            raise UserError(f"`{' '.join(cmd)}` failed (build dependencies: libzmq and msgpack-cxx, see "
                            f"docs/ofx.md):\n" + "\n".join(tail))
    return dest / BUNDLE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("install-ofx", help="build the OpenFX plugin and install its bundle where OFX hosts look")
    p.add_argument("--dest", type=Path, help=f"plugin folder (default: first of $OFX_PLUGIN_PATH, else {default_dest()})")
    p.add_argument("--build-dir", type=Path, help="CMake build folder (default: build/plugin_ofx)")
    p.set_defaults(func=cmd_install)


def cmd_install(args: argparse.Namespace) -> int:
    bundle = install(args.dest, args.build_dir)
    print(f"installed {bundle}; restart the host (DaVinci Resolve, Nuke, Natron, ...) to load it")
    return 0
