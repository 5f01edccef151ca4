"""Fixtures: one shared engine process (tiny preset, small limits, a media root) and a client to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from serverkit import shared_engine


@pytest.fixture(scope="session")
def media_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def engine(tmp_path_factory, media_root):
    with shared_engine(tmp_path_factory.mktemp("engine") / "state", media_root) as proc:
        yield proc


@pytest.fixture
def client(engine):
    c = engine.client()
    yield c
    c.close()


