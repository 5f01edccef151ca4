"""Face backends are named in one place (engine.face_backends): a detector added to its table is
selectable everywhere a name is taken (Settings, protocol dicts, the CLI, load_detector,
prepare) with no other edit, and every unknown name is one sentence listing the known ones."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import UserError
from engine.face_backends import DETECTORS, EMBEDDERS, Backends
from engine.faces.detect import Face, load_detector
from engine.metrics.embed import load_embedder
from engine.settings import Settings


class FakeDetector:
    """Finds one 64-pixel face in the middle of every frame; remembers the models folder it got."""

    name = "fake"

    def __init__(self, models: str | None = None):
        self.models = models

    def detect(self, rgb8: np.ndarray, min_size: float) -> list[Face]:
        cy, cx = rgb8.shape[0] / 2, rgb8.shape[1] / 2
        kps = np.array([[cx - 12, cy - 8], [cx + 12, cy - 8], [cx, cy + 4], [cx - 10, cy + 16], [cx + 10, cy + 16]])
        return [Face(np.array([cx - 32, cy - 32, cx + 32, cy + 32], float), kps, 0.99)]


@pytest.fixture
def fake(monkeypatch):
    """The one line a newcomer adds to DETECTORS, for this test only."""
    monkeypatch.setitem(DETECTORS.table, "fake", f"{__name__}:FakeDetector")
    return "fake"


def test_a_detector_added_to_the_table_is_a_valid_setting_and_loads_by_name(fake):
    assert Settings(face_detector=fake).face_detector == fake
    assert Settings.from_dict({"face_detector": fake}).face_detector == fake
    detector = load_detector(fake, "/models/here")
    assert isinstance(detector, FakeDetector) and detector.models == "/models/here"


def test_a_detector_added_to_the_table_is_offered_by_the_edit_and_qc_command_lines(fake):
    from engine.cli import build_parser, settings_from_args
    from engine.faces.cli import _settings

    parser = build_parser()
    args = parser.parse_args(["edit", "clip/", "--prompt", "x", "--out", "o", "--face-detector", fake])
    assert settings_from_args(args).face_detector == fake
    args = parser.parse_args(["qc", "a/", "b/", "--face-detector", fake])
    assert _settings(args).face_detector == fake


def test_prepare_finds_faces_with_a_detector_chosen_by_its_settings_name(fake):
    from engine.faces.plan import prepare

    frames = [np.full((160, 200, 3), 90 + 10 * i, np.uint8) for i in range(3)]
    plan = prepare(frames, Settings(face_detector=fake, face_min_size=16, resolution=64))
    assert plan.detector == fake
    assert plan.status == ["face"] * 3 and len(plan.crops) == 3


@pytest.mark.parametrize("field, table, load, builtin", [
    ("face_detector", DETECTORS, load_detector, "auto, mtcnn, insightface, dlib"),
    ("face_embedder", EMBEDDERS, load_embedder, "auto, facenet, dlib, arcface"),
])
def test_an_unknown_backend_is_one_sentence_listing_the_registered_ones(monkeypatch, field, table, load, builtin):
    monkeypatch.setitem(table.table, "fake", f"{__name__}:FakeDetector")
    with pytest.raises(UserError) as err:
        Settings(**{field: "bogus"})
    assert str(err.value) == f"{field} must be one of {builtin}, fake, not 'bogus'."
    with pytest.raises(UserError) as err:
        load("bogus")
    assert str(err.value) == f"unknown {table.kind} 'bogus'; choose one of: {builtin}, fake."


def test_an_unknown_detector_on_the_command_line_is_one_line_naming_the_registered_ones_exit_2(fake, capsys):
    from engine.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["edit", "clip/", "--prompt", "x", "--out", "o", "--face-detector", "bogus"])
    assert exit_.value.code == 2
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("ipfacediff edit: argument --face-detector: invalid choice: 'bogus'"), first
    assert all(repr(name) in first or name in first for name in ("auto", "mtcnn", "insightface", "dlib", fake))


class PlainDetector(FakeDetector):
    name = "plain"


def test_auto_loads_the_backend_for_no_insightface_pack_when_none_is_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("INSIGHTFACE_HOME", str(tmp_path))
    kind = Backends("fake thing", {"packed": f"{__name__}:FakeDetector", "plain": f"{__name__}:PlainDetector"},
                    with_pack="packed", without_pack="plain")
    assert kind.names() == ("auto", "packed", "plain")
    loaded = kind.load("auto", str(tmp_path))
    assert loaded.name == "plain" and loaded.models == str(tmp_path)
