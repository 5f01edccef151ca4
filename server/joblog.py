"""What `ipfacediff serve` says about its jobs, for the person or farm log watching it.

In: a `logging.Logger` (`configure` builds the engine's from `serve --log-level/--log-file`)
and the jobs as the service and worker see them. Out: one line when a job arrives, starts,
passes each tenth of its progress, and ends (DONE, or FAILED/CANCELLED/INTERRUPTED with its
code and reason, with seconds and frames), and the engine's ready and shutdown lines; at
`--log-level debug` also every request (type, id, job, client) and every error reply to one,
for whoever is debugging a client. Levels: requests DEBUG, job lines INFO, failed jobs WARNING,
internal errors ERROR; ready and shutdown WARNING, so that `--log-level warning` keeps the
engine's lifecycle (launchers wait for "ready on").
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Any

from engine.progress import clock_text

LEVELS = ("debug", "info", "warning", "error")


def configure(name: str, level: str = "info", file: Path | None = None) -> logging.Logger:
    """The logger `name` writing to stderr (`ipfacediff engine: ...`) and, with `file`, appending
    timestamped lines there; replaces handlers an earlier call added."""
    logger = logging.getLogger(name)
    logger.setLevel(level.upper())
    logger.propagate = False
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("ipfacediff engine: %(message)s"))
    logger.addHandler(console)
    if file is not None:
        to_file = logging.FileHandler(file, encoding="utf-8")
        to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(to_file)
    return logger


def frames_of(request: dict[str, Any]) -> str:
    """'12 inline frames' or 'frames 1001-1048 of /media/shot' from a SUBMIT/PREVIEW request."""
    if "frames" in request:
        return f"{request['frames']['count']} inline frame(s)"
    rng = request["input"].get("range")
    return f"frames {rng[0]}-{rng[1]} of {request['input']['path']}" if rng else request["input"]["path"]


class JobLog:
    def __init__(self, logger: logging.Logger):
        self.logger = logger
        self.tenths: dict[str, int] = {}  # job id -> tenths of progress logged so far
        self.lock = threading.Lock()

    def arrived(self, job: Any, position: int) -> None:
        self.logger.info(f"job {job.id} arrived: {job.kind} of {frames_of(job.request)}, prompt "
                         f"{job.request['prompt']!r}; queue position {position}")

    def started(self, job: Any, frames: int) -> None:
        with self.lock:
            self.tenths[job.id] = 0
        self.logger.info(f"job {job.id} started: {frames} frame(s)")

    def progress(self, job: Any, stage: str, fraction: float, eta_s: float | None) -> None:
        tenth = int(fraction * 10 + 1e-9)
        with self.lock:
            if tenth <= self.tenths.get(job.id, 10) or tenth >= 10:
                return  # the end is the DONE line
            self.tenths[job.id] = tenth
        self.logger.info(f"job {job.id} {tenth * 10}% ({stage}, ETA {clock_text(eta_s)})")

    def ended(self, job: Any, frames: int) -> None:
        with self.lock:
            self.tenths.pop(job.id, None)
        took = (job.finished or 0) - (job.started or job.finished or 0)
        if job.state == "done":
            self.logger.info(f"job {job.id} DONE in {took:.1f} s, {frames} frame(s)")
            return
        level = logging.ERROR if job.code == "internal" else logging.WARNING
        self.logger.log(level, f"job {job.id} {job.state.upper()} after {took:.1f} s, {frames} frame(s) "
                               f"[{job.code}]: {job.error}")

    def request(self, client: bytes, header: dict[str, Any]) -> None:
        if self.logger.isEnabledFor(logging.DEBUG):  # every request passes here: format only when shown
            job = f" job {header['job']}" if "job" in header else ""
            self.logger.debug(f"request {header['type']} id {header['id']!r}{job} from client {client.hex()}")

    def refused(self, client: bytes, reply: dict[str, Any]) -> None:
        if self.logger.isEnabledFor(logging.DEBUG):
            self.logger.debug(f"error reply to client {client.hex()} (re {reply.get('re')!r}) [{reply['code']}]: "
                              f"{reply['message']}")

    def lifecycle(self, message: str) -> None:
        self.logger.warning(message)
