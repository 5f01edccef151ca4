"""An edit of two faces is one edit: progress runs 0 → 1 once, stats sum both subjects and list each."""

from __future__ import annotations

from engine.editor import _summed
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


def test_summed_seconds_keep_the_subjects_precision_so_they_add_up_as_shown():
    """Float sums of rounded seconds are not rounded (0.1 + 0.2 = 0.30000000000000004): once a
    two-face stats file said so, and a run's edit seconds differed from its subjects' sum."""
    def subject(edit_s: float, unet_s: float) -> dict:
        return {"frames": 4, "keyframes": [0, 3], "unet_evals": {"total": 10}, "seconds": {"load": 1.5, "edit": edit_s},
                "seconds_in": {"unet": unet_s}, "cache_bytes": {"host": 8}, "cache_bytes_per_frame": 2.0,
                "peak_memory_bytes": {"device": None, "host_rss": 5}, "inversion_reused": False}

    out = _summed([subject(0.1, 0.3094), subject(0.2, 0.309)], [0, 1])
    assert out["seconds"] == {"load": 1.5, "edit": 0.3} and out["seconds_in"] == {"unet": 0.6184}
    assert out["unet_evals"] == {"total": 20, "per_frame": 2.5} and out["cache_bytes"] == {"host": 16}
