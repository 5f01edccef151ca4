"""Start and stop an engine process (`ipfacediff serve`) on this machine.

In: a state dir, the model flags and extra `serve` flags. Out: an `EngineProcess` whose
`start()` returns once the engine has printed `ready on ADDR` (bounded wait), with
`client()`, `shutdown()` (by the token the engine writes) and `kill()`. Used by the demo,
the tests and scripts that need a private engine.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from server.client import Client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EngineProcess:
    def __init__(self, state_dir: Path, args: list[str] = (), port: int | None = None,
                 model: tuple[str, ...] = ("--preset", "tiny"), env: dict[str, str] | None = None):
        self.state_dir, self.args, self.model = Path(state_dir), list(args), list(model)
        self.port = port or free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
                    "TRANSFORMERS_VERBOSITY": "error", **(env or {})}
        self.proc: subprocess.Popen | None = None

    def start(self, ready_timeout: float = 120.0) -> "EngineProcess":
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.state_dir.parent / f"{self.state_dir.name}-engine-{self.port}.log"
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "serve", *self.model, "--bind", self.address,
             "--state-dir", str(self.state_dir), *self.args],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
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

    @property
    def token(self) -> str:
        return (self.state_dir / "shutdown.token").read_text()

    def shutdown(self, timeout: float = 30.0) -> int:
        """Ask the engine to stop (authorised by its token); kill it if it does not."""
        try:
            with self.client() as c:
                c.shutdown(self.token)
            self.proc.wait(timeout)
        except Exception:  # any failure to stop politely ends in a kill: never leave it running
            pass
        return self.kill()

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
