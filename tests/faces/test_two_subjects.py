"""An edit of two faces is one edit: progress runs 0 → 1 once, stats sum both subjects and list each."""

from __future__ import annotations

from engine.settings import Settings


def test_two_faces_are_one_meter_progress_once_and_stats_summed_with_each_subject(two_faces, tiny_editor):
    frames = two_faces[:4]
    seen: list[float] = []
    result = tiny_editor.edit(frames, "add glasses", Settings(face_subject="all", steps=2, qc_every=0),
                              progress=lambda stage, step, fraction: seen.append(fraction))
    stats = result.stats
    subjects = stats["subjects"]
    assert [s["subject"] for s in subjects] == [0, 1] and [s["frames"] for s in subjects] == [4, 4]
    one = subjects[0]["unet_evals"]["total"]
    assert one > 0 and stats["unet_evals"]["total"] == one + subjects[1]["unet_evals"]["total"] == 2 * one
    assert stats["frames"] == 8 and stats["unet_evals"]["per_frame"] == 2 * one / 8
    assert stats["seconds"]["edit"] == round(sum(s["seconds"]["edit"] for s in subjects), 4)
    assert seen == sorted(seen) and seen[-1] == 1.0, seen  # never back to 0 for the second face
    assert max(f for f in seen[:len(seen) // 2]) <= 0.5 + 1e-9 and seen.count(1.0) <= 2
