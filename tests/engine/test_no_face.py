"""A clip with no face is never edited whole behind the user's back (issue 15 item 5): in the
default `--mode auto` it passes through bit for bit without a UNet call, the stats and stderr say
so and `edit` exits 3 (the frames are still written: the output folder holds the shot);
`--mode full` edits the whole frames on request."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.cli import NO_FACE_STATUS, main
from engine.editor import NO_FACE
from engine.io import read_frames, write_frames
from engine.settings import Settings


def _noise(n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    return [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(n)]


@pytest.fixture
def unet_calls(tiny_editor):
    """How many times the tiny editor's UNets ran (forward pre-hooks, removed after the test)."""
    calls: list[int] = []
    handles = [unet.register_forward_pre_hook(lambda *_: calls.append(1)) for unet in tiny_editor.models.unets()]
    yield calls
    for handle in handles:
        handle.remove()


def test_a_clip_without_a_face_comes_back_bit_identical_in_auto_mode_and_no_unet_runs(tiny_editor, unet_calls):
    frames = _noise()
    result = tiny_editor.edit(frames, "add glasses", Settings(steps=2))
    assert unet_calls == [] and result.stats["unet_evals"]["total"] == 0
    assert all(o.dtype == f.dtype and np.array_equal(o, f) for o, f in zip(result.frames, frames))
    assert result.stats["no_face"] is True and result.stats["warnings"] == [NO_FACE]
    assert result.stats["faces"]["status_counts"] == {"no_face": 3}


def test_full_mode_edits_the_whole_frames_of_the_same_clip(tiny_editor, unet_calls):
    frames = _noise()
    result = tiny_editor.edit(frames, "add glasses", Settings(steps=2, face_mode="full"))
    assert len(unet_calls) > 0 and "no_face" not in result.stats and NO_FACE not in result.stats["warnings"]
    assert all(not np.array_equal(o, f) for o, f in zip(result.frames, frames))


def _edit(source: Path, out: Path, *extra: str) -> int:
    return main(["edit", str(source), "--out", str(out), "--prompt", "add glasses", "--preset", "tiny",
                 "--steps", "2", "--quiet", "--stats", str(out.with_suffix(".json")), *extra])


def test_edit_writes_a_clip_without_a_face_unchanged_says_so_and_exits_3(tmp_path, capsys):
    frames = _noise()
    write_frames(frames, tmp_path / "in", start=1001)
    assert _edit(tmp_path / "in", tmp_path / "out") == NO_FACE_STATUS == 3
    err = capsys.readouterr().err
    assert f"warning: {NO_FACE}" in err and "--mode full" in err
    written = read_frames(tmp_path / "out")
    assert written.first == 1001 and all(np.array_equal(o, f) for o, f in zip(written.frames, frames))
    stats = json.loads((tmp_path / "out.json").read_text())
    assert stats["no_face"] is True and stats["unet_evals"]["total"] == 0 and stats["warnings"] == [NO_FACE]


def test_edit_with_mode_full_edits_a_clip_without_a_face_and_exits_0(tmp_path, capsys):
    frames = _noise()
    write_frames(frames, tmp_path / "in", start=1001)
    assert _edit(tmp_path / "in", tmp_path / "out", "--mode", "full") == 0
    assert NO_FACE not in capsys.readouterr().err
    assert all(not np.array_equal(o, f) for o, f in zip(read_frames(tmp_path / "out").frames, frames))
    assert "no_face" not in json.loads((tmp_path / "out.json").read_text())
