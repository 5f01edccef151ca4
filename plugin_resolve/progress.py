"""Console progress and a cancel flag, for where there is no UIManager window.

In: (fraction 0..1, message) updates from a run. Out: lines like
`[ipfacediff]  42% Engine: edit step 12/50` on a stream (Resolve's Console shows stdout),
printed when the message or the percentage (in 5% steps) changes. `CancelFlag` is the
`cancel` callable a window's Cancel button (or Ctrl+C) sets.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO


class ConsoleProgress:
    def __init__(self, stream: TextIO | None = None, step: float = 0.05):
        self.stream, self.step = stream, step
        self.last: tuple[int, str] | None = None

    def __call__(self, fraction: float, message: str) -> None:
        bucket = int(max(0.0, min(1.0, fraction)) / self.step)
        head = message.split("(")[0].strip()
        if self.last is not None and self.last == (bucket, head):
            return
        self.last = (bucket, head)
        print(f"[ipfacediff] {fraction * 100:3.0f}% {message}", file=self.stream or sys.stdout, flush=True)


class CancelFlag:
    def __init__(self) -> None:
        self.event = threading.Event()

    def set(self) -> None:
        self.event.set()

    def clear(self) -> None:
        self.event.clear()

    def __call__(self) -> bool:
        return self.event.is_set()
