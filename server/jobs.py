"""Job table (SQLite) and job files on disk, shared by the I/O loop, ingest and the worker.

In: a state directory. Out: `JobStore` with thread-safe create/transition/lookup, the
visible queue (FIFO; previews go first), and atomic input/result files under
`<state>/jobs/<sha256(job id)>/`. On open, jobs left `running` by a crash become
`interrupted` and `queued` ones are queued again in their original order.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY, seq INTEGER NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL,
  fingerprint TEXT NOT NULL, request TEXT NOT NULL, result TEXT, stats TEXT,
  code TEXT, error TEXT, created REAL, started REAL, finished REAL, attempts INTEGER DEFAULT 1
)"""


@dataclass
class Job:
    id: str
    seq: int
    kind: str
    state: str
    fingerprint: str
    request: dict[str, Any]
    result: dict[str, Any] | None = None
    stats: dict[str, Any] | None = None
    code: str | None = None
    error: str | None = None
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    attempts: int = 1
    # live, not persisted
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: dict[str, Any] = field(default_factory=dict)
    watchers: set[bytes] = field(default_factory=set)
    preview: tuple[dict[str, Any], Any] | None = None  # (info, frame) of the first finished keyframe


def write_atomic(path: Path, chunks: Iterable[Any], fsync: bool = True) -> int:
    """Write buffers to `path` via a temporary file and rename; returns bytes written."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.{threading.get_ident()}")
    n = 0
    with open(tmp, "wb") as f:
        for chunk in chunks:
            n += f.write(chunk)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    return n


class JobStore:
    def __init__(self, state_dir: Path, fsync: bool = True):
        self.dir = Path(state_dir)
        (self.dir / "jobs").mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.db = sqlite3.connect(self.dir / "jobs.sqlite3", check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        self.db.execute(SCHEMA)
        self.jobs: dict[str, Job] = {}
        self.queue: deque[str] = deque()
        self.running: str | None = None
        self._load()

    # --- persistence -------------------------------------------------------------------
    def _load(self) -> None:
        now = time.time()
        with self.lock:
            self.db.execute("UPDATE jobs SET state='interrupted', code='interrupted', finished=?, "
                            "error='the engine stopped while this job was running; resubmit it with retry.' "
                            "WHERE state='running'", (now,))
            cols = [c[1] for c in self.db.execute("PRAGMA table_info(jobs)")]
            for row in self.db.execute("SELECT * FROM jobs ORDER BY seq"):
                r = dict(zip(cols, row))
                job = Job(r["id"], r["seq"], r["kind"], r["state"], r["fingerprint"], json.loads(r["request"]),
                          json.loads(r["result"]) if r["result"] else None,
                          json.loads(r["stats"]) if r["stats"] else None, r["code"], r["error"], r["created"],
                          r["started"], r["finished"], r["attempts"])
                self.jobs[job.id] = job
                if job.state == "queued":
                    self._enqueue(job)
            self.seq = max((j.seq for j in self.jobs.values()), default=0)

    def _save(self, job: Job) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (job.id, job.seq, job.kind, job.state, job.fingerprint, json.dumps(job.request),
             json.dumps(job.result) if job.result is not None else None,
             json.dumps(job.stats, default=str) if job.stats is not None else None,
             job.code, job.error, job.created, job.started, job.finished, job.attempts))

    def folder(self, job_id: str) -> Path:
        return self.dir / "jobs" / hashlib.sha256(job_id.encode()).hexdigest()[:32]

    # --- queue -------------------------------------------------------------------------
    def _enqueue(self, job: Job) -> None:
        if job.kind == "preview":  # previews go ahead of full jobs, behind earlier previews
            pos = sum(1 for j in self.queue if self.jobs[j].kind == "preview")
            self.queue.insert(pos, job.id)
        else:
            self.queue.append(job.id)

    def add(self, job_id: str, kind: str, fingerprint: str, request: dict[str, Any], inputs: list[Any] | None,
            retry_of: Job | None = None) -> Job:
        """Persist inputs, then the row, then queue it (so a crash never queues a job without its input)."""
        folder = self.folder(job_id)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in ("result.raw",):
            (folder / stale).unlink(missing_ok=True)
        if inputs is not None:
            write_atomic(folder / "input.raw", inputs, self.fsync)
        with self.lock:
            self.seq += 1
            job = Job(job_id, self.seq, kind, "queued", fingerprint, request, created=time.time(),
                      attempts=(retry_of.attempts + 1) if retry_of else 1)
            if retry_of is not None:
                job.watchers = retry_of.watchers
            self._save(job)
            self.jobs[job_id] = job
            self._enqueue(job)
            self.changed.notify_all()
            return job

    def position(self, job: Job) -> int | None:
        """0 = running, 1.. = place in the queue, None = not waiting."""
        with self.lock:
            if job.state == "running":
                return 0
            try:
                return self.queue.index(job.id) + 1
            except ValueError:
                return None

    def next(self, timeout: float) -> Job | None:
        """Worker: wait for the next queued job and mark it running."""
        with self.lock:
            if not self.queue:
                self.changed.wait(timeout)
            if not self.queue:
                return None
            job = self.jobs[self.queue.popleft()]
            job.state, job.started, self.running = "running", time.time(), job.id
            job.progress = {}
            self._save(job)
            return job

    def finish(self, job: Job, state: str, *, result: dict | None = None, stats: dict | None = None,
               code: str | None = None, error: str | None = None) -> None:
        with self.lock:
            job.state, job.result, job.stats, job.code, job.error = state, result, stats, code, error
            job.finished, job.preview = time.time(), None
            if self.running == job.id:
                self.running = None
            self._save(job)
            self.changed.notify_all()

    def cancel(self, job: Job) -> None:
        """Queued: cancelled now. Running: flag it; the worker stops within one step."""
        with self.lock:
            if job.state == "queued":
                self.queue.remove(job.id)
                self.finish(job, "cancelled", code="cancelled", error="the job was cancelled before it started.")
            elif job.state == "running":
                job.cancel.set()

    def release(self, job: Job) -> int:
        with self.lock:
            folder = self.folder(job.id)
            freed = sum(p.stat().st_size for p in folder.glob("*") if p.is_file()) if folder.exists() else 0
            self.db.execute("DELETE FROM jobs WHERE id=?", (job.id,))
            del self.jobs[job.id]
        shutil.rmtree(folder, ignore_errors=True)
        return freed

    def interrupt_running(self, reason: str) -> None:
        with self.lock:
            if self.running:
                self.jobs[self.running].cancel.set()

    def close(self) -> None:
        with self.lock:
            self.db.close()
