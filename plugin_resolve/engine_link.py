"""Talk to the engine for one Resolve run: connect, submit or preview, follow, cancel, release.

In: the engine address (CURVE keys folder for a remote engine), the job (prompt, settings
dict, input path and range, output folder). Out: `Edited`, the paths of the frames the engine
wrote and the engine's warnings (sentences, e.g. no face was found so the shot passed through).
Only the protocol is used (server.client; no torch, no numpy): frames travel as files the
engine reads and writes inside its media roots. Errors become `EngineNotRunning`,
`EngineFailed` or `Cancelled`; a cancelled job is cancelled on the engine too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from plugin_resolve.errors import Cancelled, EngineFailed, EngineNotRunning, start_command
from server import protocol as P
from server.client import Client, EngineError, EngineGone, job_id

POLL_S = 0.2
CANCEL_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Edited:
    """One finished engine job: the frames it wrote and what it warned about (RESULT `warnings`)."""

    paths: list[str]
    warnings: list[str]


class EngineLink:
    def __init__(self, address: str, media_root: str, *, keys: str | None = None, connect_timeout: float = 2.0):
        self.address, self.media_root, self.keys = address, media_root, keys
        self.connect_timeout = connect_timeout
        self.client: Client | None = None
        self.jobs: list[str] = []

    def connect(self) -> dict[str, Any]:
        curve = None
        if self.keys:
            from pathlib import Path

            from server.security import load_client_keys

            try:
                curve = load_client_keys(Path(self.keys))
            except (OSError, ValueError) as exc:
                raise EngineFailed(f"Cannot read the engine's CURVE keys from {self.keys}: {exc}. Copy server.key "
                                   "and clients/NAME.key_secret there (made by `ipfacediff keys`).") from None
        self.client = Client(self.address, curve=curve, timeout=self.connect_timeout, retries=1, name="resolve")
        try:
            info = self.client.connect()
        except EngineGone:
            self.close()
            raise EngineNotRunning(self.address, self.media_root) from None
        except EngineError as exc:
            self.close()
            raise EngineFailed(f"The engine at {self.address} refused to talk: {exc.message}") from None
        self.client.timeout, self.client.retries = 5.0, 2
        if "path_io" not in info.get("capabilities", []) or not info.get("media_roots"):
            self.close()
            raise EngineFailed(f"The engine at {self.address} has no media root, so it cannot read Resolve's "
                               f"frames or write its results. Restart it with: "
                               f"{start_command(self.address, self.media_root)}")
        return info

    def run(self, prompt: str, settings: dict, input_path: str, frame_range: tuple[int, int] | None,
            output: dict, *, preview_frame: int | None = None,
            progress: Callable[[float, str], None] = lambda f, m: None,
            cancel: Callable[[], bool] = lambda: False) -> Edited:
        """Queue the job and wait for it; returns its output paths and warnings (the job is released)."""
        job = job_id()
        try:
            self.client.submit(prompt, input=input_path, frame_range=frame_range, settings=settings,
                               output=output, job=job, preview_frame=preview_frame, events=False)
        except EngineError as exc:
            raise EngineFailed(self._refusal(exc)) from None
        except EngineGone:
            raise EngineNotRunning(self.address, self.media_root) from None
        self.jobs.append(job)
        try:
            info = self._follow(job, progress, cancel)
        except KeyboardInterrupt:
            self._cancel(job)
            raise Cancelled("the engine's edit") from None
        except EngineGone:
            raise EngineFailed(f"The engine at {self.address} stopped answering during the edit. Start it again "
                               f"with: {start_command(self.address, self.media_root)}") from None
        if info["state"] == "cancelled":
            raise Cancelled("the engine's edit")
        if info["state"] != "done":
            raise EngineFailed(f"The engine could not edit the shot: {info.get('error') or info['state']}")
        result = self.client.result(job, pixels=False)
        if result.status != P.DONE or (result.output or {}).get("mode") != "path":
            raise EngineFailed(f"The engine finished but returned no frames ({result.reason or result.status}).")
        self._release(job)
        return Edited(list(result.output["paths"]), list(result.warnings or []))

    def _follow(self, job: str, progress: Callable, cancel: Callable) -> dict:
        while True:
            if cancel():
                self._cancel(job)
                raise Cancelled("the engine's edit")
            info = self.client.status(job)
            state = info["state"]
            if state in P.TERMINAL or state == "unknown":
                return info
            p = info.get("progress") or {}
            if state == "queued":
                progress(0.0, f"Waiting in the engine's queue (place {info.get('position')})")
            elif p:
                progress(float(p.get("fraction") or 0.0),
                         f"Engine: {p.get('stage', 'edit')} step {p.get('step', 0)}/{p.get('steps', '?')}"
                         + (f", about {p['eta_s']:.0f} s left" if p.get("eta_s") is not None else ""))
            time.sleep(POLL_S)

    def _cancel(self, job: str) -> None:
        """Cancel on the engine and wait (bounded) until it has stopped, so nothing is written later."""
        try:
            self.client.cancel(job)
            end = time.monotonic() + CANCEL_TIMEOUT_S
            while time.monotonic() < end and self.client.status(job)["state"] not in P.TERMINAL:
                time.sleep(POLL_S)
        except (EngineGone, EngineError):
            pass

    def _release(self, job: str) -> None:
        try:
            self.client.release(job)
            self.jobs.remove(job)
        except (EngineGone, EngineError):
            pass

    def _refusal(self, exc: EngineError) -> str:
        if exc.code == "path_refused":
            return (f"The engine refused the frame folder: {exc.message} Restart it with: "
                    f"{start_command(self.address, self.media_root)}")
        if exc.code == "bad_settings":
            return f"The engine refused the settings: {exc.message}"
        return f"The engine refused the job: {exc.message}"

    def close(self) -> None:
        if self.client is not None:
            self.client.timeout, self.client.retries = 2.0, 0  # a dead engine must not hold up cleanup
            if self.client.sock is not None:
                for job in list(self.jobs):
                    self._release(job)
            self.client.close()
            self.client = None
