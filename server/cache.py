"""Inversion cache: a clip already inverted (same model-ready frames, model, steps, keyframe plan,
face crop) is not inverted again, even after an engine restart.

In: keys from `engine.editor.inversion_key` and `Inversion`s (the engine calls `get` before
inverting and `put` after). Out: the inversion, from memory (an LRU by tensor bytes, held where
the engine's TensorStore put it: device or pinned host) or from disk (one safetensors file per
entry under `<state-dir>/inversions`, LRU by file bytes with the file's mtime as its last use).
Disk writes run on one background thread so a finished job is not held up by them; a file
appears only once complete (temporary name, then rename; folder 0700, files 0600), and
leftovers of a crash are deleted at start-up.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from server.jobs import PRIVATE, private_dir

SUFFIX = ".safetensors"
DEFAULT_BYTES = 2 * 1024 ** 3  # memory tier (device or pinned host)
DEFAULT_DISK_BYTES = 64 * 1024 ** 3  # ≈ two 300-frame SD-scale clips (docs/benchmarks.md)


def nbytes(inversion: Any) -> int:
    return int(inversion.store.nbytes)


class InversionCache:
    def __init__(self, max_bytes: int, folder: Path | None = None, max_disk_bytes: int = 0):
        self.max_bytes, self.max_disk_bytes = max_bytes, max_disk_bytes
        self.folder = folder if folder is not None and max_disk_bytes > 0 else None
        self.items: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self.bytes = 0
        self.hits = self.disk_hits = self.misses = self.disk_errors = 0
        self.lock = threading.Lock()
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="ipfacediff-cache") if self.folder else None
        self.pending: set[Future] = set()
        if self.folder is not None:
            private_dir(self.folder)
            for tmp in self.folder.glob(".*.tmp*"):  # left by a write that was killed (write_atomic)
                tmp.unlink(missing_ok=True)

    # --- lookups ------------------------------------------------------------------------
    def get(self, key: str, restore: Callable[[Path], Any] | None = None) -> Any | None:
        """The inversion for `key`: from memory, else read from disk with `restore(path)`."""
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                self.hits += 1
                return self.items[key][0]
        path = self._path(key)
        if path is not None and restore is not None and path.is_file():
            try:
                inversion = restore(path)
                os.utime(path)  # most recently used
            except Exception as exc:  # a damaged or foreign file: drop it, invert again
                print(f"ipfacediff engine: dropping unreadable cache file {path.name}: {exc}", file=sys.stderr)
                path.unlink(missing_ok=True)
                with self.lock:
                    self.disk_errors += 1
            else:
                self._remember(key, inversion)
                with self.lock:
                    self.disk_hits += 1
                return inversion
        with self.lock:
            self.misses += 1
        return None

    def put(self, key: str, inversion: Any) -> None:
        self._remember(key, inversion)
        path = self._path(key)
        if path is None or path.is_file() or nbytes(inversion) > self.max_disk_bytes:
            return
        future = self.writer.submit(self._write, path, inversion)
        with self.lock:
            self.pending.add(future)
        future.add_done_callback(self._written)

    # --- memory tier ---------------------------------------------------------------------
    def _remember(self, key: str, inversion: Any) -> None:
        size = nbytes(inversion)
        with self.lock:
            if key in self.items:
                self.bytes -= self.items.pop(key)[1]
            if size > self.max_bytes:
                return
            self.items[key] = (inversion, size)
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, (_, old) = self.items.popitem(last=False)
                self.bytes -= old

    # --- disk tier -----------------------------------------------------------------------
    def _path(self, key: str) -> Path | None:
        return None if self.folder is None else self.folder / f"{key}{SUFFIX}"

    def _write(self, path: Path, inversion: Any) -> None:
        from engine import inversion_file  # torch: loaded with the engine, not with the CLI

        inversion_file.save(inversion, path)
        os.chmod(path, PRIVATE)  # the folder is 0700 already; the file is private too
        self._evict_disk(keep=path)

    def _written(self, future: Future) -> None:
        with self.lock:
            self.pending.discard(future)
            failed = future.exception() is not None
            self.disk_errors += failed
        if failed:
            print(f"ipfacediff engine: could not write an inversion to the cache: {future.exception()}",
                  file=sys.stderr)

    def _disk_files(self) -> list[tuple[float, int, Path]]:
        files = []
        for p in self.folder.glob(f"*{SUFFIX}"):
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            files.append((st.st_mtime, st.st_size, p))
        return sorted(files)

    def _evict_disk(self, keep: Path) -> None:
        files = self._disk_files()
        total = sum(size for _, size, _ in files)
        for _, size, p in files:  # oldest use first
            if total <= self.max_disk_bytes:
                break
            if p != keep:
                p.unlink(missing_ok=True)
                total -= size

    def flush(self, timeout: float | None = None) -> None:
        """Wait for pending disk writes (at shutdown, and in tests)."""
        with self.lock:
            pending = list(self.pending)
        for f in pending:
            try:
                f.result(timeout)
            except Exception:
                pass  # counted and logged in _written

    def close(self) -> None:
        if self.writer is not None:
            self.flush()
            self.writer.shutdown(wait=True)

    def info(self) -> dict[str, int]:
        disk = self._disk_files() if self.folder is not None else []
        with self.lock:
            return {"entries": len(self.items), "bytes": self.bytes, "max_bytes": self.max_bytes,
                    "hits": self.hits, "disk_hits": self.disk_hits, "misses": self.misses,
                    "disk_entries": len(disk), "disk_bytes": sum(s for _, s, _ in disk),
                    "max_disk_bytes": self.max_disk_bytes, "disk_writes_pending": len(self.pending),
                    "disk_errors": self.disk_errors}
