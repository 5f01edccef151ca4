"""The Resolve side runs in Resolve's own Python: only the standard library, pyzmq and msgpack.

Every plugin_resolve module is imported, and the installed menu script run, in an isolated
interpreter (`python -I`) whose path holds nothing but the repository's packages and copies
of zmq/msgpack: numpy, torch and the rest of the environment are simply not there, and any
attempt to import torch, numpy, cv2 or diffusers is recorded.
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import msgpack
import zmq

import plugin_resolve

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "numpy", "cv2", "diffusers", "transformers", "tifffile", "OpenEXR", "imageio")

PRELUDE = """
import importlib.abc, sys
sys.path[:0] = {paths!r}
attempted = []
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {heavy!r}:
            attempted.append(name)
            raise ImportError('blocked in this test: ' + name)
sys.meta_path.insert(0, Block())
"""


def isolated_deps(tmp_path: Path) -> Path:
    deps = tmp_path / "deps"
    deps.mkdir()
    for mod in (zmq, msgpack):
        pkg = Path(mod.__file__).parent
        os.symlink(pkg, deps / pkg.name)
    libs = Path(zmq.__file__).parent.parent / "pyzmq.libs"
    if libs.exists():
        os.symlink(libs, deps / libs.name)
    return deps


def run_isolated(tmp_path: Path, body: str) -> dict:
    code = PRELUDE.format(paths=[str(isolated_deps(tmp_path)), str(ROOT)], heavy=HEAVY) + body
    proc = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_plugin_module_imports_without_numpy_or_torch(tmp_path):
    names = sorted(f"plugin_resolve.{m.name}" for m in pkgutil.iter_modules([str(Path(plugin_resolve.__path__[0]))]))
    assert {"plugin_resolve.flow", "plugin_resolve.ui", "plugin_resolve.resolve_menu"} <= set(names)
    out = run_isolated(tmp_path, f"""
import importlib, json
for name in ['plugin_resolve'] + {names!r}:
    importlib.import_module(name)
import engine.settings, engine.errors, server.client
loaded = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})
print(json.dumps({{"loaded": loaded, "attempted": attempted, "settings": engine.settings.__file__}}))
""")
    assert out["loaded"] == [] and out["attempted"] == [], out
    assert out["settings"].startswith(str(ROOT))


def test_installed_menu_script_explains_missing_uimanager(tmp_path):
    """The free edition: fu.UIManager is None -> the script says so and what to do instead."""
    from plugin_resolve.install import install

    script = install(dest=tmp_path / "Scripts" / "Utility")
    out = run_isolated(tmp_path, f"""
import contextlib, io, json, runpy
class Fusion: UIManager = None
class Resolve:
    def Fusion(self): return Fusion()
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    runpy.run_path({str(script)!r}, init_globals={{"resolve": Resolve()}}, run_name="__main__")
print(json.dumps({{"printed": buf.getvalue(), "attempted": attempted}}))
""")
    assert "UIManager is not available" in out["printed"] and "edit_marked_range(resolve" in out["printed"]
    assert out["attempted"] == []
