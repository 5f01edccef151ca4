"""Helpers for the server tests: a real engine process on loopback, free ports, clips, bounded waits.

In: a state dir and extra `serve` flags. Out: `EngineProcess` (address, pid, rss, kill),
`clip(...)` frames, `wait_progress(...)`, and `InProcess`: the real `Service` (sockets,
protocol, jobs, worker) in this process around `EchoEditor`, an editor double whose edit
returns the frames unchanged, optionally waiting on a gate (with a cancel check), so the
server's own behaviour is tested in well under a second per test. Every wait here is bounded.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from server import launch
from server.client import Client
from server.launch import free_port  # noqa: F401  (tests import it from here)

ROOT = Path(__file__).resolve().parents[2]
SMALL_LIMITS = ["--max-parts", "64", "--max-part-bytes", str(1 << 20), "--max-message-bytes", str(2 << 20),
                "--max-frames", "32", "--max-side", "512", "--max-queue", "32"]


class EngineProcess(launch.EngineProcess):
    """The tiny-preset engine with fast heartbeats and one thread, as every server test uses it."""

    def __init__(self, state_dir: Path, args: list[str] = (), port: int | None = None):
        super().__init__(state_dir, ["--heartbeat", "0.5", *args], port, env={"OMP_NUM_THREADS": "1"})

    def rss(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0


@contextmanager
def shared_engine(state_dir: Path, media_root: Path) -> Iterator[EngineProcess]:
    """A started engine with small limits and one media root, stopped (SIGTERM) when the `with` ends: the
    session engine of the server and Resolve tests."""
    proc = EngineProcess(state_dir, [*SMALL_LIMITS, "--media-root", str(media_root), "--no-fsync"]).start()
    try:
        yield proc
    finally:
        proc.kill(signal.SIGTERM)


def clip(n: int = 3, seed: int = 0, size: int = 64, channels: int = 3, dtype=np.uint8) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return [rng.random((size, size, channels)).astype(dtype) for _ in range(n)]
    return [rng.integers(0, 256, (size, size, channels), dtype=np.uint8).astype(dtype) for _ in range(n)]


def wait_progress(c: Client, job: str, timeout: float = 60.0) -> dict:
    """Block until the first PROGRESS event of `job` (bounded)."""
    for ev in c.events(job, timeout=timeout):
        if ev["type"] == "PROGRESS":
            return ev
    raise AssertionError(f"job {job} ended without progress")


@dataclass
class EchoModels:
    identity_string: str = "echo"
    random_weights: bool = True
    device: str = "cpu"
    dtype: str = "float32"
    tokenizer: Any = None


@dataclass
class EchoResult:
    frames: list
    stats: dict = field(default_factory=dict)
    qc: dict | None = None


class EchoEditor:
    """Returns the frames unchanged; while `gate` is clear an edit waits for it (checking `cancel`)."""

    def __init__(self):
        from engine.presets import tiny_tokenizer  # the tiny preset's: one token a character, 77 in all

        self.models = EchoModels(tokenizer=tiny_tokenizer())
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()

    def edit(self, frames, prompt, settings, *, progress, cancel, inversions=None, preview=None):
        from engine.errors import Cancelled

        self.started.set()
        deadline = time.monotonic() + 60
        while not self.gate.wait(0.01):
            if cancel():
                raise Cancelled("the edit was cancelled.")
            assert time.monotonic() < deadline, "gate never opened"
        progress("edit", 1, 1.0)
        return EchoResult([np.array(f) for f in frames], {"frames": len(frames)})


class InProcess:
    """The real Service on a loopback port in a thread; `with InProcess(tmp, **options) as eng:`."""

    def __init__(self, state_dir: Path, editor: Any = None, **options: Any):
        from server.service import Options, Service

        self.editor = editor or EchoEditor()
        self.address = f"tcp://127.0.0.1:{free_port()}"
        opts = Options(bind=self.address, state_dir=Path(state_dir), fsync=False, heartbeat_s=0.2, **options)
        self.service = Service(self.editor, opts, log=logging.getLogger("ipfacediff.tests.engine"))
        self.thread = threading.Thread(target=self.service.run, daemon=True)

    def __enter__(self) -> "InProcess":
        self.thread.start()
        assert self.service.ready.wait(30)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.editor.gate.set()
        self.service.stop()
        self.thread.join(30)

    def client(self, **kwargs: Any) -> Client:
        c = Client(self.address, timeout=kwargs.pop("timeout", 10.0), retries=kwargs.pop("retries", 0), **kwargs)
        c.connect()
        return c
