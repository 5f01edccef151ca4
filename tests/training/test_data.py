"""Training data: clear errors for bad folders, captions, edit lists, a resumable batch order."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from engine.errors import UserError
from engine.training.data import BUILTIN_EDITS, FaceFolder, StepBatches, compose_target, read_edits


def _png(path, side=80):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((side, side, 3), 128, np.uint8))
    return path


def test_faces_load_as_minus_one_to_one_with_captions(faces):
    ds = FaceFolder(faces, 64, "default caption")
    assert len(ds) == 16
    item = ds[0]
    assert item["pixels"].shape == (3, 64, 64)
    assert -1.0 <= item["pixels"].min() and item["pixels"].max() <= 1.0
    assert "woman" in item["caption"]  # from metadata.jsonl
    flipped = ds[16]["pixels"]  # index ≥ N: the same image flipped
    assert np.allclose(flipped.numpy(), item["pixels"].flip(-1).numpy())


@pytest.mark.parametrize("case, needle", [
    ("missing", "does not exist"), ("empty", "holds no images"), ("file", "not a folder"),
    ("broken", "cannot be read"), ("small", "smaller than the training resolution"),
])
def test_bad_data_folders_give_one_sentence(tmp_path, case, needle):
    folder = tmp_path / "data"
    if case == "empty":
        folder.mkdir()
        (folder / "notes.txt").write_text("no images here")
    elif case == "file":
        folder.write_text("x")
    elif case == "broken":
        _png(folder / "a.png")
        (folder / "b.jpg").write_bytes(b"not a jpeg")
    elif case == "small":
        _png(folder / "a.png", side=48)
    with pytest.raises(UserError, match=needle):
        FaceFolder(folder, 64, "c")


def test_caption_sources_sidecar_beats_metadata_beats_default(tmp_path):
    for name in ("a.png", "b.png", "sub/c.png"):
        _png(tmp_path / name)
    (tmp_path / "captions.csv").write_text("file_name,text\na.png,from csv\nsub/c.png,nested\n")
    (tmp_path / "a.txt").write_text("from sidecar\n")
    ds = FaceFolder(tmp_path, 64, "the default")
    assert ds.captions == ["from sidecar", "the default", "nested"]
    (tmp_path / "captions.csv").unlink()
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"name": "a.png"}) + "\n")
    with pytest.raises(UserError, match="file_name"):
        FaceFolder(tmp_path, 64, "d")


def test_edit_lists(tmp_path):
    with pytest.raises(UserError, match="needs an edit list"):
        read_edits(None)
    with pytest.raises(UserError, match="does not exist"):
        read_edits(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("# only a comment\n\n")
    with pytest.raises(UserError, match="holds no edits"):
        read_edits(tmp_path / "empty.txt")
    (tmp_path / "e.txt").write_text("wearing glasses\n# c\n{caption} with a red beard\n")
    assert read_edits(tmp_path / "e.txt") == ["wearing glasses", "{caption} with a red beard"]
    (tmp_path / "e.json").write_text(json.dumps(["smiling"]))
    assert read_edits(tmp_path / "e.json") == ["smiling"]
    assert read_edits("builtin") == BUILTIN_EDITS
    assert compose_target("a photo of a man.", "wearing glasses") == "a photo of a man, wearing glasses"
    assert compose_target("a man", "{caption} with a beard") == "a man with a beard"


def test_batch_order_is_a_function_of_the_counter():
    a = StepBatches(10, 4, seed=3)
    stream = [b for _, b in zip(range(8), a)]
    resumed = StepBatches(10, 4, seed=3, start=5)
    assert [b for _, b in zip(range(3), resumed)] == stream[5:]
    epoch = [i % 10 for b in stream[:5] for i in b][:10]
    assert sorted(epoch) == list(range(10))  # every image once an epoch
    r0, r1 = StepBatches(10, 2, 0, rank=0, world=2), StepBatches(10, 2, 0, rank=1, world=2)
    seen = [i % 10 for k in range(2) for i in r0.batch_at(k) + r1.batch_at(k)]
    assert len(set(seen)) == 8  # processes take disjoint batches
    fixed = StepBatches(10, 3, 0, fixed=True)
    assert fixed.batch_at(0) == fixed.batch_at(7)
    assert max(i for k in range(20) for i in StepBatches(10, 3, 0, flip=False).batch_at(k)) < 10
