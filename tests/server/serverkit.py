"""Helpers for the server tests: a real engine process on loopback, free ports, clips, bounded waits.

In: a state dir and extra `serve` flags. Out: `EngineProcess` (address, pid, rss, kill),
`clip(...)` frames, `wait_progress(...)`. Every wait here is bounded.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from server.client import Client

ROOT = Path(__file__).resolve().parents[2]
SMALL_LIMITS = ["--max-parts", "64", "--max-part-bytes", str(1 << 20), "--max-message-bytes", str(2 << 20),
                "--max-frames", "32", "--max-side", "512", "--max-queue", "32"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EngineProcess:
    def __init__(self, state_dir: Path, args: list[str] = (), port: int | None = None):
        self.state_dir, self.args = Path(state_dir), list(args)
        self.port = port or free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, ready_timeout: float = 120.0) -> "EngineProcess":
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "OMP_NUM_THREADS": "1"}
        self.log_path = self.state_dir.parent / f"{self.state_dir.name}-engine-{self.port}.log"
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "serve", "--preset", "tiny", "--bind", self.address,
             "--state-dir", str(self.state_dir), "--heartbeat", "0.5", *self.args],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"engine exited with {self.proc.returncode}: {self.log_path.read_text()}")
            if b"ready on" in self.log_path.read_bytes():
                return self
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"engine not ready within {ready_timeout} s: {self.log_path.read_text()}")

    def client(self, **kwargs) -> Client:
        c = Client(self.address, timeout=kwargs.pop("timeout", 10.0), retries=kwargs.pop("retries", 2), **kwargs)
        c.connect()
        return c

    def rss(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    @property
    def token(self) -> str:
        return (self.state_dir / "shutdown.token").read_text()

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 30.0) -> int:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
        return self.proc.returncode


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
