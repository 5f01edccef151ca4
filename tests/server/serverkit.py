"""Helpers for the server tests: a real engine process on loopback, free ports, clips, bounded waits.

In: a state dir and extra `serve` flags. Out: `EngineProcess` (address, pid, rss, kill),
`clip(...)` frames, `wait_progress(...)`. Every wait here is bounded.
"""

from __future__ import annotations

from pathlib import Path

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


def shared_engine(state_dir: Path, media_root: Path) -> EngineProcess:
    """A started engine with small limits and one media root: the session engine of the server and Resolve tests."""
    return EngineProcess(state_dir, [*SMALL_LIMITS, "--media-root", str(media_root), "--no-fsync"]).start()


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
