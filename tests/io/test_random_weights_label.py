"""RANDOM_WEIGHTS.txt: one writer for every output path (CLI, engine, farm) and the preset folders."""

from __future__ import annotations

from engine.io import mark_random_weights
from engine.io.write import RANDOM_WEIGHTS_MARKER


def test_a_random_weight_run_is_labelled_and_a_later_real_run_removes_only_the_label(tmp_path):
    (tmp_path / "frame_000000.png").write_bytes(b"frame")
    mark_random_weights(tmp_path, True)
    assert (tmp_path / RANDOM_WEIGHTS_MARKER).read_text().startswith("These frames were made by a model with "
                                                                      "random weights")
    mark_random_weights(tmp_path, True)  # replaced, no temp file left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["RANDOM_WEIGHTS.txt", "frame_000000.png"]
    mark_random_weights(tmp_path, False)
    mark_random_weights(tmp_path, False)
    assert [p.name for p in tmp_path.iterdir()] == ["frame_000000.png"]


def test_presets_label_their_saved_folders_with_the_same_file_name():
    from engine import presets

    assert presets.RANDOM_WEIGHTS_MARKER == RANDOM_WEIGHTS_MARKER == "RANDOM_WEIGHTS.txt"
