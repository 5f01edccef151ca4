"""Progress and status lines a farm monitor shows, in Open Job Description's form.

In: the engine's progress callback `(stage, step, fraction)` and a task's own milestones.
Out: lines on stdout — `openjd_progress: <percent>` (0..100, never going back, printed when
it moves by at least a whole percent) and `openjd_status: <text>` — which an OpenJD runtime
(openjd-sessions, AWS Deadline Cloud workers) reads from the task's output.
"""

from __future__ import annotations

import sys
from typing import TextIO


class TaskStatus:
    """A task's progress over [start, stop) percent bands; one object per task."""

    def __init__(self, out: TextIO | None = None):
        self.out = out or sys.stdout
        self.percent = 0.0
        self._shown = -1
        self.band = (0.0, 100.0)

    def status(self, text: str) -> None:
        print(f"openjd_status: {' '.join(text.split())}", file=self.out, flush=True)

    def stage(self, text: str, start: float, stop: float) -> None:
        """A new stage covering percents start..stop; says so and moves to `start`."""
        self.band = (start, stop)
        self.status(text)
        self.progress(0.0)

    def progress(self, fraction: float) -> None:
        """`fraction` (0..1) of the current stage done."""
        start, stop = self.band
        self.percent = max(self.percent, start + (stop - start) * min(max(fraction, 0.0), 1.0))
        if int(self.percent) > self._shown:
            self._shown = int(self.percent)
            print(f"openjd_progress: {self._shown}", file=self.out, flush=True)

    def engine(self, stage: str, step: int, fraction: float) -> None:
        """The engine's `Progress` callback."""
        self.progress(fraction)
