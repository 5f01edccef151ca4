"""`native_stderr()`: keep what C decoders (OpenCV, FFmpeg, libpng) print on stderr off the console.

In: a block of decoding calls. Out: a `NativeLog` whose `last` is the final line they printed
(after the block), so a caller can fold what matters into its own sentence. Works on file
descriptor 2, where C libraries write; Python's own stderr output in the block is kept too.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass


_OPENCV_LOG = re.compile(r"^\[ ?(WARN|ERROR|INFO|DEBUG)")  # OpenCV's own logger: how, not what
_FFMPEG_PREFIX = re.compile(r"^\[[^\]]* @ 0x[0-9a-f]+\] ")


@dataclass
class NativeLog:
    text: str = ""

    @property
    def last(self) -> str:
        """The last line a decoder printed about the file (OpenCV's own log lines skipped,
        FFmpeg's `[demuxer @ 0x…]` prefix removed); empty when none."""
        lines = [line.strip() for line in self.text.splitlines() if line.strip() and not _OPENCV_LOG.match(line)]
        return _FFMPEG_PREFIX.sub("", lines[-1]) if lines else ""


@contextmanager
def native_stderr():
    log = NativeLog()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to protect
        yield log
        return
    sys.stderr.flush()
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield log
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            log.text = sink.read().decode(errors="replace")
