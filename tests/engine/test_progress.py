"""Progress a person can read: one bar per stage on a terminal, a line every few seconds elsewhere."""

from __future__ import annotations

import io

from engine.progress import StageProgress, clock_text


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _run_edit(progress: StageProgress, clock: Clock, invert_steps: int = 50, edit_steps: int = 100) -> None:
    """An edit's callbacks as the engine makes them: one per UNet call, a second each."""
    total = invert_steps + edit_steps
    for i in range(invert_steps):
        progress("invert", i, (i + 1) / total)
        clock.now += 1.0
    for i in range(edit_steps):
        progress("edit", i % 50, (invert_steps + i + 1) / total)
        clock.now += 1.0
    progress.close()


def test_without_a_terminal_a_farm_log_gets_a_line_per_stage_start_and_every_few_seconds_with_an_eta():
    stream, clock = io.StringIO(), Clock()
    _run_edit(StageProgress(stream, tty=False, every_s=10.0, clock=clock), clock)
    lines = stream.getvalue().splitlines()
    # 150 callbacks over 150 s: a line at each stage start and at most one per 10 s, plus the last state
    assert 15 <= len(lines) <= 18, lines
    assert lines[0] == "invert   1%  step 0  elapsed 0:00  ETA ?"  # no rate known yet
    assert sum(line.startswith("edit ") for line in lines) >= 10
    assert lines[-1] == "edit   100%  step 49  elapsed 2:29  ETA 0:00"
    # after 70 s, 71 of 150 steps are done: 70 * 79 / 71 = 78 s left
    assert "edit    47%  step 20  elapsed 1:10  ETA 1:18" in lines


def test_on_a_terminal_each_stage_has_its_own_bar_with_eta_not_a_line_per_step():
    stream, clock = io.StringIO(), Clock()
    _run_edit(StageProgress(stream, tty=True, clock=clock), clock)
    text = stream.getvalue()
    finished = [part for part in text.split("\n") if part.strip()]
    assert len(finished) == 2, finished  # two bars left on screen: invert (to 33 %) and edit (to 100 %)
    assert finished[0].rsplit("\r", 1)[-1].startswith("invert  33%")
    assert finished[1].rsplit("\r", 1)[-1].startswith("edit   100%") and finished[1].endswith(", step 49, ETA 0:00")
    assert "ETA" in text and "invert step" not in text


def test_the_engines_eta_is_shown_as_given():
    stream, clock = io.StringIO(), Clock()
    progress = StageProgress(stream, tty=False, clock=clock, prefix="[RANDOM WEIGHTS] ")
    progress("edit", 3, 0.25, 754.0)
    assert stream.getvalue() == "[RANDOM WEIGHTS] edit    25%  step 3  elapsed 0:00  ETA 12:34\n"


def test_clock_text_reads_like_a_clock():
    assert [clock_text(s) for s in (None, 0.4, 25, 723, 3723)] == ["?", "0:00", "0:25", "12:03", "1:02:03"]
