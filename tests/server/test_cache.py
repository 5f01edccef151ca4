"""The inversion cache: LRU by bytes in memory; on disk, survives a new cache over the same
folder (an engine restart), evicts by file bytes in last-use order, drops damaged files."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch

from engine import inversion_file
from engine.settings import Settings
from server.cache import InversionCache

FAST = Settings(steps=2, face_mode="full")


class _Inv:
    def __init__(self, n):
        self.store = type("S", (), {"nbytes": n})()


def test_memory_lru_by_bytes():
    cache = InversionCache(100)
    cache.put("a", _Inv(60))
    cache.put("b", _Inv(30))
    assert cache.get("a") is not None  # a becomes most recent
    cache.put("c", _Inv(30))  # evicts b
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    cache.put("huge", _Inv(1000))
    assert cache.get("huge") is None and cache.info()["bytes"] == 90
    assert cache.info()["disk_entries"] == 0  # no folder: memory only


@pytest.fixture(scope="module")
def inversions(tiny_editor):
    rng = np.random.default_rng(5)
    out = []
    for _ in range(3):
        frames = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
        out.append(tiny_editor.invert(frames, FAST))
    return out


def _restore(editor):
    return lambda path: inversion_file.load(path, editor.models, FAST)


def test_disk_tier_survives_a_restart(tiny_editor, inversions, tmp_path):
    inv = inversions[0]
    first = InversionCache(1 << 30, tmp_path, 1 << 30)
    first.put("k0", inv)
    first.close()
    assert (tmp_path / "k0.safetensors").is_file() and first.info()["disk_entries"] == 1

    second = InversionCache(1 << 30, tmp_path, 1 << 30)  # a new engine process over the same state dir
    assert second.get("other", _restore(tiny_editor)) is None
    back = second.get("k0", _restore(tiny_editor))
    assert back is not None and back.signature == inv.signature
    assert torch.equal(back.latents(FAST.steps), inv.latents(FAST.steps))
    info = second.info()
    assert (info["disk_hits"], info["misses"], info["entries"]) == (1, 1, 1)
    assert second.get("k0", _restore(tiny_editor)) is back  # now from memory
    assert second.info()["hits"] == 1


def test_disk_evicts_least_recently_used_by_bytes(tiny_editor, inversions, tmp_path):
    probe = InversionCache(0, tmp_path / "probe", 1 << 30)
    probe.put("p", inversions[0])
    probe.close()
    size = (tmp_path / "probe" / "p.safetensors").stat().st_size

    cache = InversionCache(0, tmp_path / "c", int(2.5 * size))  # room for two files; memory tier off
    cache.put("a", inversions[0])
    cache.flush()
    cache.put("b", inversions[1])
    cache.flush()
    old = time.time() - 100
    os.utime(tmp_path / "c" / "a.safetensors", (old, old))
    os.utime(tmp_path / "c" / "b.safetensors", (old + 10, old + 10))
    assert cache.get("a", _restore(tiny_editor)) is not None  # a is now the most recent
    cache.put("c", inversions[2])
    cache.close()
    names = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert names == ["a.safetensors", "c.safetensors"]
    assert cache.info()["disk_bytes"] <= int(2.5 * size)


def test_damaged_file_is_dropped_and_leftovers_cleaned(tiny_editor, inversions, tmp_path):
    cache = InversionCache(0, tmp_path, 1 << 30)
    cache.put("k", inversions[0])
    cache.close()
    path = tmp_path / "k.safetensors"
    path.write_bytes(path.read_bytes()[:1000])  # cut short, as by a full disk
    (tmp_path / ".x.safetensors.tmp123.456").write_bytes(b"half")  # as a killed write_atomic leaves it
    again = InversionCache(0, tmp_path, 1 << 30)
    assert not (tmp_path / ".x.safetensors.tmp123.456").exists()
    assert again.get("k", _restore(tiny_editor)) is None
    assert not path.exists() and again.info()["disk_errors"] == 1 and again.info()["misses"] == 1


def test_disk_tier_files_are_private_whatever_the_umask(inversions, tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        cache = InversionCache(1 << 30, tmp_path / "inversions", 1 << 30)
        cache.put("k", inversions[0])
        cache.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "inversions").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "inversions" / "k.safetensors").stat().st_mode) == 0o600
