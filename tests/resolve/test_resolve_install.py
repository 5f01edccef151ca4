"""`ipfacediff install-resolve`, the Scripts folders per platform, and reaching Resolve from outside."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from engine.cli import main
from plugin_resolve import connect
from plugin_resolve.errors import NoResolve
from plugin_resolve.install import SCRIPT_NAME, scripts_dir


@pytest.mark.parametrize("platform, system, env, expected", [
    ("linux", False, {}, "/home/ed/.local/share/DaVinciResolve/Fusion/Scripts/Utility"),
    ("darwin", False, {},
     "/home/ed/Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Utility"),
    ("darwin", True, {}, "/Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Utility"),
    ("win32", False, {"APPDATA": r"C:\Users\ed\AppData\Roaming"},
     r"C:\Users\ed\AppData\Roaming\Blackmagic Design\DaVinci Resolve\Support\Fusion\Scripts\Utility"),
    ("win32", True, {"PROGRAMDATA": r"C:\ProgramData"},
     r"C:\ProgramData\Blackmagic Design\DaVinci Resolve\Fusion\Scripts\Utility"),
])
def test_scripts_dir(platform, system, env, expected):
    got = scripts_dir(system, platform=platform, env=env, home=Path("/home/ed"))
    assert str(got).replace("\\", "/") == expected.replace("\\", "/")


def test_linux_system_dir():
    assert str(scripts_dir(True, platform="linux")).endswith("resolve/Fusion/Scripts/Utility")


def test_install_resolve_user_prints_where(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(Path, "home", lambda: tmp_path)
    monkeypatch.setattr(sys, "platform", "linux")
    assert main(["install-resolve", "--user", "--engine", "tcp://10.0.0.5:5555"]) == 0
    out, err = capsys.readouterr()
    path = Path(out.strip())
    assert path == tmp_path / ".local/share/DaVinciResolve/Fusion/Scripts/Utility" / SCRIPT_NAME and path.is_file()
    text = path.read_text()
    assert "'engine': 'tcp://10.0.0.5:5555'" in text and "'package_root':" in text
    compile(text, str(path), "exec")
    assert "Utility > ipfacediff" in err
    assert main(["install-resolve"]) == 0  # again: replaced in place
    assert len(list(path.parent.iterdir())) == 1


def test_install_resolve_refused_folder_is_one_sentence(tmp_path, monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("plugin_resolve.install.install", refuse)
    assert main(["install-resolve", "--system"]) == 2
    err = capsys.readouterr().err
    assert "cannot write to" in err and "--user" in err and "Traceback" not in err


def test_scriptapp_none_says_why_and_what_to_do(monkeypatch):
    monkeypatch.setitem(sys.modules, "DaVinciResolveScript", types.SimpleNamespace(scriptapp=lambda name: None))
    with pytest.raises(NoResolve) as err:
        connect.scriptapp()
    text = str(err.value)
    assert "returned None" in text and "Studio" in text and "External scripting using" in text and "-nogui" in text


def test_scriptapp_returns_resolve(monkeypatch):
    app = object()
    monkeypatch.setitem(sys.modules, "DaVinciResolveScript", types.SimpleNamespace(scriptapp=lambda name: app))
    assert connect.scriptapp() is app


def test_from_globals_prefers_resolve_then_bmd():
    app = object()
    assert connect.from_globals({"resolve": app}) is app
    bmd = types.SimpleNamespace(scriptapp=lambda name: app)
    assert connect.from_globals({"bmd": bmd}) is app
