"""The Resolve side runs in Resolve's own Python: only the standard library, pyzmq and msgpack.

Every plugin_resolve module is imported, and the installed menu script run, in an isolated
interpreter (`python -I`) whose path holds nothing but the repository's packages and copies
of zmq/msgpack: numpy, torch and the rest of the environment are simply not there, and any
attempt to import torch, numpy, cv2 or diffusers is recorded.

Python versions: Resolve runs scripts with the user's Python 3.6+; the Resolve side supports
3.8+ (MIN_PYTHON of the menu script). Everything the menu script can import is checked
statically against 3.8 (vermin) and, where a real 3.8 interpreter with pyzmq and msgpack is on
this machine (PATH or pyenv), imported and run with it; older interpreters get the launcher's
message instead of an ImportError.
"""

from __future__ import annotations

import ast
import json
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import msgpack
import zmq

import plugin_resolve

ROOT = Path(__file__).resolve().parents[2]
MIN_PYTHON = (3, 8)
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


def run_isolated(tmp_path: Path, body: str, python: str | None = None) -> dict:
    """Run `body` in `python -I` (default: this interpreter, with copies of zmq/msgpack; another
    interpreter brings its own) with only the repository added to the path; heavy imports fail."""
    paths = [str(ROOT)] if python else [str(isolated_deps(tmp_path)), str(ROOT)]
    code = PRELUDE.format(paths=paths, heavy=HEAVY) + body
    proc = subprocess.run([python or sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60,
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


def free_edition_menu(script: Path) -> str:
    """Code that runs the installed menu script as the free edition would (UIManager None) and
    keeps what it printed in `buf`."""
    return f"""
import contextlib, io, json, runpy
class Fusion: UIManager = None
class Resolve:
    def Fusion(self): return Fusion()
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    runpy.run_path({str(script)!r}, init_globals={{"resolve": Resolve()}}, run_name="__main__")
"""


def test_installed_menu_script_explains_missing_uimanager(tmp_path):
    """The free edition: fu.UIManager is None -> the script says so and what to do instead."""
    from plugin_resolve.install import install

    script = install(dest=tmp_path / "Scripts" / "Utility")
    out = run_isolated(tmp_path, free_edition_menu(script) + """
print(json.dumps({"printed": buf.getvalue(), "attempted": attempted}))
""")
    assert "UIManager is not available" in out["printed"] and "edit_marked_range(resolve" in out["printed"]
    assert out["attempted"] == []


def interpreter(version: tuple[int, int]) -> str | None:
    """A real, working python<version> on this machine (pyenv, then PATH), or None."""
    pyenv = sorted((Path.home() / ".pyenv" / "versions").glob("%d.%d.*/bin/python" % version))
    for found in [str(p) for p in pyenv[-1:]] + [shutil.which("python%d.%d" % version)]:
        if found and subprocess.run([found, "-c", "pass"], capture_output=True).returncode == 0:
            return found
    return None


def menu_imports(tmp_path: Path) -> list[Path]:
    """Every repository file the Resolve side loads: the plugin_resolve modules the menu script and
    the Console use (not the `ipfacediff` CLI's cli/__main__), every project module they import at
    any level (lazy imports included), and what those load in turn, listed by a fresh interpreter."""
    plugin = [p for p in (ROOT / "plugin_resolve").glob("*.py") if p.stem not in ("cli", "__main__")]
    names = {"plugin_resolve." + p.stem for p in plugin} - {"plugin_resolve.__init__"}
    for p in plugin:
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            found = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            names |= {n for n in found if n.split(".")[0] in ("engine", "server", "plugin_resolve")}
    out = run_isolated(tmp_path, f"""
import importlib, json
for name in {sorted(names)!r}:
    importlib.import_module(name)
print(json.dumps(sorted({{m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None)}})))
""")
    files = [Path(f).resolve() for f in out if ROOT in Path(f).resolve().parents]
    return sorted(f for f in files if f.relative_to(ROOT).parts[0] in ("engine", "server", "plugin_resolve"))


def test_the_menu_script_imports_nothing_newer_than_python_3_8(tmp_path):
    files = menu_imports(tmp_path)
    names = {str(f.relative_to(ROOT)) for f in files}
    assert {"plugin_resolve/ui.py", "plugin_resolve/flow.py", "server/protocol.py", "server/client.py",
            "engine/settings.py"} <= names, names
    proc = subprocess.run([sys.executable, "-c", "import sys; from vermin.main import main; sys.exit(main())",
                           "--target=%d.%d-" % MIN_PYTHON, "--no-tips", "--violations", *map(str, files)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # vermin skips annotations; `int | None` and `list[int]` are fine on 3.8 only under the future import
    unguarded = [str(f.relative_to(ROOT)) for f in files if _annotated(f) and not _future_annotations(f)]
    assert unguarded == []


def _annotated(path: Path) -> bool:
    """Whether an annotation uses `X | Y` or `list[...]`-style spellings that 3.8 cannot evaluate."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    notes = [n.returns for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    notes += [n.annotation for n in ast.walk(tree) if isinstance(n, (ast.arg, ast.AnnAssign))]
    return any(isinstance(x, ast.BinOp) and isinstance(x.op, ast.BitOr) or isinstance(x, ast.Subscript)
               and isinstance(x.value, ast.Name) and x.value.id in ("list", "dict", "tuple", "set", "type")
               for note in notes if note is not None for x in ast.walk(note))


def _future_annotations(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(n, ast.ImportFrom) and n.module == "__future__" and any(a.name == "annotations"
               for a in n.names) for n in tree.body)


def test_the_resolve_side_runs_on_python_3_8(tmp_path):
    python = interpreter(MIN_PYTHON)
    if python is None or subprocess.run([python, "-c", "import zmq, msgpack"], capture_output=True).returncode:
        pytest.skip("no python3.8 with pyzmq and msgpack here (pyenv install 3.8; pip install pyzmq msgpack)")
    names = sorted(f"plugin_resolve.{m.name}" for m in pkgutil.iter_modules([str(Path(plugin_resolve.__path__[0]))])
                   if m.name != "__main__")
    from plugin_resolve.install import install

    script = install(dest=tmp_path / "Scripts" / "Utility")
    out = run_isolated(tmp_path, f"""
import importlib
for name in ['plugin_resolve'] + {names!r}:
    importlib.import_module(name)
from engine.settings import Settings
from server import protocol
keyframes = Settings.from_dict({{"steps": 3, "keyframes": [0, 4]}}).keyframes
""" + free_edition_menu(script) + f"""
print(json.dumps({{"version": list(sys.version_info[:2]), "keyframes": list(keyframes), "printed": buf.getvalue(),
                  "limits": sorted(protocol.Limits().to_dict())[:2], "attempted": attempted}}))
""", python=python)
    assert out["version"] == list(MIN_PYTHON) and out["keyframes"] == [0, 4] and out["attempted"] == []
    assert "UIManager is not available" in out["printed"] and out["limits"]


@pytest.mark.parametrize("version", [(3, 7), (3, 6)])
def test_the_menu_script_on_an_older_python_says_which_python_it_needs(tmp_path, version):
    """A real older interpreter when there is one; otherwise this one, told it is older."""
    from plugin_resolve.install import install

    script = install(dest=tmp_path / "Scripts" / "Utility")
    python = interpreter(version)
    pretend = "" if python else "import sys; sys.version_info = %r\n" % ((*version, 0, "final", 0),)
    code = pretend + f"import runpy; runpy.run_path({str(script)!r}, init_globals={{'resolve': object()}}, " \
                     "run_name='__main__')"
    proc = subprocess.run([python or sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert ("Resolve runs this script with Python %d.%d" % version) in proc.stdout
    assert "ipfacediff needs Python 3.8 or newer" in proc.stdout
