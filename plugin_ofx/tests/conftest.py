"""Fixtures for the OFX plugin tests: the CMake build and a real engine process.

In: plugin_ofx/ sources, tests/server/serverkit.py (the engine launcher). Out: `ofx_build`
(bundle + test host, built once per session; a missing build dependency fails every test with
the install command, nothing is skipped) and `real_engine` (tiny preset, loopback).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.append(str(HERE.parents[1] / "tests" / "server"))  # serverkit
sys.path.append(str(HERE.parents[1]))  # plugin_ofx.install from a source checkout

from ofxkit import BuildError, build  # noqa: E402


@pytest.fixture(scope="session")
def ofx_build():
    try:
        return build()
    except BuildError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def real_engine(tmp_path_factory):
    from serverkit import EngineProcess

    proc = EngineProcess(tmp_path_factory.mktemp("ofx-engine") / "state", ["--no-fsync"]).start()
    yield proc
    proc.kill(signal.SIGTERM)
