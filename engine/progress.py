"""Progress a person can read: one bar per stage, with the time left.

In: the engine's progress callback arguments `(stage, step, fraction)` — `fraction` of the
whole edit — and, from an engine server, its `eta_s`. Out: on a terminal, one tqdm bar per
stage (`invert`, `edit`, `decode`; the previous one stays on screen), showing the percent of the
whole edit, the stage's time so far, the step and the time left; elsewhere
(a log file, a farm node) one line when a stage starts and at most one every `every_s`
seconds, e.g. `edit  62%  step 7  elapsed 0:41  ETA 0:25`; `close()` prints the last state.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO


def clock_text(seconds: float | None) -> str:
    """0:25, 12:03, 1:02:03; `?` when not known yet."""
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class StageProgress:
    def __init__(self, stream: TextIO | None = None, *, prefix: str = "", tty: bool | None = None,
                 every_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.prefix, self.every_s, self.clock = prefix, every_s, clock
        self.started: float | None = None
        self.stage: str | None = None
        self.bar = None
        self.last_line = float("-inf")
        self.latest = ""
        self.printed = ""

    def __call__(self, stage: str, step: int, fraction: float, eta_s: float | None = None) -> None:
        now = self.clock()
        self.started = now if self.started is None else self.started
        elapsed = now - self.started
        if eta_s is None and fraction > 0 and elapsed > 0:
            eta_s = elapsed * (1 - fraction) / fraction
        new_stage, self.stage = stage != self.stage, stage
        percent = round(min(max(fraction, 0.0), 1.0) * 100)
        if self.tty:
            self._bar(new_stage, stage, step, percent, eta_s)
            return
        self.latest = (f"{self.prefix}{stage:<6} {percent:3d}%  step {step}  elapsed {clock_text(elapsed)}  "
                       f"ETA {clock_text(eta_s)}")
        if new_stage or now - self.last_line >= self.every_s:
            self._print(self.latest)
            self.last_line = now

    def _bar(self, new_stage: bool, stage: str, step: int, percent: int, eta_s: float | None) -> None:
        from tqdm import tqdm

        if new_stage:
            self._close_bar()
            self.bar = tqdm(total=100, initial=percent, desc=f"{self.prefix}{stage:<6}", file=self.stream,
                            bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed}{postfix}", dynamic_ncols=True)
        self.bar.set_postfix_str(f"step {step}, ETA {clock_text(eta_s)}", refresh=False)
        self.bar.update(percent - self.bar.n)

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)
        self.printed = line

    def close(self) -> None:
        self._close_bar()
        if self.latest and self.latest != self.printed:
            self._print(self.latest)
