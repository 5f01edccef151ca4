"""Binds other than loopback/ipc need CURVE keys (refused before binding); CURVE over loopback
admits an allowed client key and gives a disallowed one no answer at all."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from server.client import Client, EngineGone
from server.security import create_keys, load_client_keys
from serverkit import ROOT, EngineProcess, free_port


def serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli", "serve", "--preset", "tiny", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_non_loopback_bind_without_keys_is_refused_before_binding(tmp_path):
    port = free_port()
    t0 = time.monotonic()
    out = serve("--bind", f"tcp://0.0.0.0:{port}", "--state-dir", str(tmp_path / "s"))
    assert out.returncode == 2 and "requires CURVE keys" in out.stderr and "ipfacediff keys" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "s").exists()  # stopped before loading anything
    assert time.monotonic() - t0 < 30


def test_curve_flag_needs_keys(tmp_path):
    out = serve("--bind", f"tcp://127.0.0.1:{free_port()}", "--curve", "--keys", str(tmp_path / "none"))
    assert out.returncode == 2 and "lacks server.key_secret" in out.stderr


def test_keys_command_writes_key_files(tmp_path):
    out = subprocess.run([sys.executable, "-m", "engine.cli", "keys", "--dir", str(tmp_path / "k"), "--client", "a"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert (tmp_path / "k" / "server.key_secret").exists() and (tmp_path / "k" / "clients" / "a.key").exists()
    assert (tmp_path / "k" / "server.key_secret").stat().st_mode & 0o077 == 0


def test_curve_allows_listed_key_and_ignores_others(tmp_path):
    keys, stranger = tmp_path / "keys", tmp_path / "stranger"
    create_keys(keys, ["editor"])
    create_keys(stranger, ["intruder"])
    proc = EngineProcess(tmp_path / "state", ["--curve", "--keys", str(keys)]).start()
    try:
        ok = Client(proc.address, curve=load_client_keys(keys, "editor"), timeout=10, retries=1)
        assert ok.connect()["type"] == "HELLO"
        ok.close()
        server_public, _, _ = load_client_keys(keys, "editor")
        _, pub, sec = load_client_keys(stranger, "intruder")
        bad = Client(proc.address, curve=(server_public, pub, sec), timeout=1.5, retries=0)
        with pytest.raises(EngineGone):
            bad.connect()
        bad.close()
        plain = Client(proc.address, timeout=1.5, retries=0)  # no CURVE at all
        with pytest.raises(EngineGone):
            plain.connect()
        plain.close()
    finally:
        proc.kill(signal.SIGTERM)
