"""Job table (SQLite) and job files on disk, shared by the I/O loop, ingest and the worker.

In: a state directory. Out: `JobStore` with thread-safe create/transition/lookup, the
visible queue (FIFO; previews go first), and atomic input/result files under
`<state>/jobs/<sha256(job id)>/` (the state dir and its folders 0700, its files 0600). On
open, jobs left `running` by a crash become `interrupted`, `queued` ones are queued again in
their original order, temporary files of interrupted writes are deleted and rows of jobs
whose files were released are dropped. A full disk never loses a transition: the job's state
changes in memory and its row is written again with the next row that can be written.
`expired(...)` picks finished jobs to release (older than a time, or oldest beyond a byte budget).
"""

from __future__ import annotations

import errno
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

from engine.errors import UserError
from engine.io.write import write_atomic
from server.protocol import TERMINAL

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


PRIVATE = 0o600  # files under the state dir: the job table, inputs, results, inversions
# Retention defaults (`serve --keep-results`, `--max-results-bytes`, `--min-free-bytes`).
KEEP_RESULTS_S = 7 * 24 * 3600.0
MAX_RESULTS_BYTES = 64 * 1024 ** 3
MIN_FREE_BYTES = 256 * 1024 ** 2


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC / EDQUOT from a write, or SQLite's 'database or disk is full'."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(exc, sqlite3.Error) and "full" in str(exc)


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) and make it 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def check_state_dir(path: Path) -> None:
    """Refuse a state dir that holds someone else's files: the engine makes it 0700, which must
    not happen to a folder the user keeps other things in."""
    if path.is_dir() and any(path.iterdir()) and not (path / "jobs.sqlite3").exists():
        raise UserError(f"the state dir {path} already holds other files; give --state-dir a new or empty folder "
                        "(the engine makes it private to its user).")
    if path.exists() and not path.is_dir():
        raise UserError(f"the state dir {path} is not a folder.")


def folder_bytes(folder: Path) -> int:
    try:
        return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    except FileNotFoundError:
        return 0


class JobStore:
    def __init__(self, state_dir: Path, fsync: bool = True):
        check_state_dir(Path(state_dir))
        self.dir = private_dir(Path(state_dir))
        private_dir(self.dir / "jobs")
        for tmp in (self.dir / "jobs").glob("*/.*.tmp*"):  # left by a write that was killed
            tmp.unlink(missing_ok=True)
        self.fsync = fsync
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.unsaved: set[str] = set()  # rows to write again (the disk was full)
        self.unreleased: set[str] = set()  # rows to delete again
        db = self.dir / "jobs.sqlite3"
        os.close(os.open(db, os.O_WRONLY | os.O_CREAT, PRIVATE))  # SQLite gives -wal/-shm the db's mode
        for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            if path.exists():
                os.chmod(path, PRIVATE)
        self.db = sqlite3.connect(db, check_same_thread=False, isolation_level=None)
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
                if job.state in TERMINAL and not self.folder(job.id).is_dir():
                    self.db.execute("DELETE FROM jobs WHERE id=?", (job.id,))  # released while the db was full
                    continue
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

    def _persist(self, job: Job) -> None:
        """Write the row, and those left over from a full disk; keep it for later if the database refuses."""
        try:
            self._save(job)
            self.unsaved.discard(job.id)
            for job_id in list(self.unreleased):
                self.db.execute("DELETE FROM jobs WHERE id=?", (job_id,))
                self.unreleased.discard(job_id)
            for job_id in list(self.unsaved):
                if job_id in self.jobs:
                    self._save(self.jobs[job_id])
                self.unsaved.discard(job_id)
        except sqlite3.Error:
            self.unsaved.add(job.id)

    def write(self, path: Path, chunks: Iterable[Any]) -> int:
        """A private file under the state dir, written atomically (the seam tests use to fill the disk)."""
        return write_atomic(path, chunks, self.fsync, PRIVATE)

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
        new = not folder.exists()
        private_dir(folder)
        for stale in ("result.raw",):
            (folder / stale).unlink(missing_ok=True)
        try:
            if inputs is not None:
                self.write(folder / "input.raw", inputs)
            with self.lock:
                job = Job(job_id, self.seq + 1, kind, "queued", fingerprint, request, created=time.time(),
                          attempts=(retry_of.attempts + 1) if retry_of else 1)
                self._save(job)
                self.seq += 1
                self.unreleased.discard(job_id)  # the id is in use again: its row must stay
        except BaseException:
            if new:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        with self.lock:
            if retry_of is not None:
                job.watchers = retry_of.watchers
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
            self._persist(job)
            return job

    def finish(self, job: Job, state: str, *, result: dict | None = None, stats: dict | None = None,
               code: str | None = None, error: str | None = None) -> None:
        with self.lock:
            job.state, job.result, job.stats, job.code, job.error = state, result, stats, code, error
            job.finished, job.preview = time.time(), None
            if self.running == job.id:
                self.running = None
            self.changed.notify_all()
            self._persist(job)

    def cancel(self, job: Job) -> None:
        """Queued: cancelled now. Running: flag it; the worker stops within one step."""
        with self.lock:
            if job.state == "queued":
                self.queue.remove(job.id)
                self.finish(job, "cancelled", code="cancelled", error="the job was cancelled before it started.")
            elif job.state == "running":
                job.cancel.set()

    def release(self, job: Job) -> int:
        """Delete the job's files first, then its row: a full disk cannot stop a client freeing space."""
        folder = self.folder(job.id)
        freed = folder_bytes(folder)
        shutil.rmtree(folder, ignore_errors=True)
        with self.lock:
            self.jobs.pop(job.id, None)
            self.unsaved.discard(job.id)
            try:
                self.db.execute("DELETE FROM jobs WHERE id=?", (job.id,))
            except sqlite3.Error:
                self.unreleased.add(job.id)  # deleted again with the next row written, or at the next start
        return freed

    def expired(self, now: float, keep_s: float, max_bytes: int) -> list[Job]:
        """Finished jobs to release: those finished more than `keep_s` ago, then the oldest
        others until the finished jobs' files fit in `max_bytes`."""
        with self.lock:
            ended = sorted((j for j in self.jobs.values() if j.state in TERMINAL),
                           key=lambda j: (j.finished or 0.0, j.seq))
        old = [j for j in ended if (j.finished or 0.0) < now - keep_s]
        rest = [(j, folder_bytes(self.folder(j.id))) for j in ended if j not in old]
        total = sum(size for _, size in rest)
        for job, size in rest:  # oldest first
            if total <= max_bytes:
                break
            old.append(job)
            total -= size
        return old

    def close(self) -> None:
        with self.lock:
            self.db.close()


def job_info(store: JobStore, job: Job) -> dict[str, Any]:
    """The public view of one job (docs/protocol.md, JobInfo)."""
    with store.lock:
        return {"id": job.id, "kind": job.kind, "state": job.state, "position": store.position(job),
                "created": job.created, "started": job.started, "finished": job.finished,
                "attempts": job.attempts, "cancel_requested": job.cancel.is_set(), "code": job.code,
                "error": job.error, "progress": dict(job.progress) or None}
