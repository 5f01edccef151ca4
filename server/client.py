"""The one Python client of the engine (CLI, Resolve script, tests, farm); no torch import.

In: an engine address (and CURVE keys for non-local engines). Out: `Client` with hello,
submit/preview, events/wait (progress), status, list, cancel, result (paged, frames as
numpy arrays when pixels are inline), release and shutdown. A request that gets no reply
within `timeout` reconnects with exponential backoff and is resent with the same id;
SUBMIT is safe to resend because the engine recognises the job id. One request is in
flight at a time (never more than the engine and this socket's RCVHWM can hold; the
pipelining rule is in docs/protocol.md).
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import zmq

from server import protocol as P


class EngineGone(Exception):
    """No reply or heartbeat from the engine within the allowed time, even after reconnecting."""


class EngineHung(Exception):
    """The engine answers, but its worker has not reported progress for too long."""


class EngineError(Exception):
    """The engine answered ERROR; `code` is one of protocol.ERROR_CODES."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{message} [{code}]")
        self.code, self.message = code, message


@dataclass
class Result:
    job: str
    status: str  # PENDING | DONE | FAILED | UNKNOWN
    state: str
    reason: str | None = None
    code: str | None = None
    stats: dict | None = None
    output: dict | None = None
    frames: list | None = None  # numpy arrays for inline results fetched with pixels
    preview: tuple[int, Any] | None = None  # PENDING with preview=True: (frame index, first finished keyframe)
    warnings: list | None = None  # e.g. where the text encoder cut a long prompt


def _event(msg: P.Message) -> dict[str, Any]:
    """An event's header; a PROGRESS with a preview also gets the frame as `preview_frame` (numpy)."""
    ev = dict(msg.header)
    if ev.get("preview") and msg.buffers:
        ev["preview_frame"] = P.to_arrays(ev["preview"]["frames"], msg.buffers)[0]
    return ev


def job_id() -> str:
    return uuid.uuid4().hex


class Client:
    def __init__(self, address: str, *, curve: tuple[bytes, bytes, bytes] | None = None, timeout: float = 10.0,
                 retries: int = 4, name: str = "ipfacediff-python", dead_after: float = 6.0,
                 hung_after: float | None = 600.0):
        self.address, self.curve, self.timeout, self.retries, self.name = address, curve, timeout, retries, name
        self.dead_after, self.hung_after = dead_after, hung_after
        self.ctx = zmq.Context.instance()
        self.sock: zmq.Socket | None = None
        self.ids = itertools.count(1)
        self.events_buf: deque = deque(maxlen=10000)
        self.info: dict[str, Any] = {}
        self.last_heard = time.monotonic()
        self.last_heartbeat: dict[str, Any] = {}

    # --- connection ----------------------------------------------------------------------
    def _open(self) -> None:
        if self.sock is not None:
            self.sock.close(linger=0)
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTING_ID, b"c" + os.urandom(8))
        sock.setsockopt(zmq.RCVHWM, 256)
        sock.setsockopt(zmq.HEARTBEAT_IVL, 2000)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 10000)
        if self.curve is not None:
            server_public, public, secret = self.curve
            sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = server_public, public, secret
        sock.connect(self.address)
        self.sock = sock

    def connect(self, *, timeout: float | None = None, retry: bool = True) -> dict[str, Any]:
        """Open the socket and negotiate the protocol version; returns the engine's HELLO.
        `timeout`/`retry=False`: give up sooner when no engine may be there at all."""
        self._open()
        self.info = self.request(self._hello(), retry=retry, timeout=timeout)
        return self.info

    def _hello(self) -> dict[str, Any]:
        return {"type": P.HELLO, "versions": list(P.SUPPORTED_VERSIONS), "client": self.name}

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close(linger=0)
            self.sock = None

    def __enter__(self) -> "Client":
        self.connect()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- request / reply -------------------------------------------------------------------
    def _recv(self, timeout: float) -> P.Message | None:
        if not self.sock.poll(int(timeout * 1000), zmq.POLLIN):
            return None
        msg = P.unpack(self.sock.recv_multipart(copy=False), P.Limits(max_parts=10 ** 6, max_part_bytes=2 ** 62,
                       max_message_bytes=2 ** 62), request=False)
        self.last_heard = time.monotonic()
        if msg.type == P.HEARTBEAT and msg.header.get("re") is None:
            self.last_heartbeat = msg.header
        return msg

    def request(self, header: dict[str, Any], buffers: Sequence[Any] = (), *, retry: bool = True,
                timeout: float | None = None) -> dict[str, Any]:
        """Send one request and return its reply header (pixel buffers in `reply['_buffers']`)."""
        if self.sock is None:
            self._open()
        header = {**header, "id": next(self.ids)}
        timeout = timeout or self.timeout
        delay = 0.2
        for attempt in range(self.retries + 1 if retry else 1):
            self.sock.send_multipart(P.pack(header, buffers), copy=False)
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                msg = self._recv(left)
                if msg is None:
                    break
                if msg.header.get("re") == header["id"]:
                    if msg.type == P.ERROR:
                        raise EngineError(msg.header.get("code", "internal"), msg.header.get("message", ""))
                    return {**msg.header, "_buffers": msg.buffers}
                if msg.header.get("re") is None and msg.type != P.HEARTBEAT:
                    self.events_buf.append(_event(msg))
            if attempt < self.retries and retry:
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                self._open()  # a fresh connection: the old one may be dead or half-open
                if header["type"] != P.HELLO:
                    try:
                        self.request(self._hello(), retry=False, timeout=timeout)
                    except EngineGone:
                        continue
        raise EngineGone(f"no answer from the engine at {self.address} to {header['type']} within "
                         f"{timeout:.0f} s ({self.retries + 1 if retry else 1} attempt(s)).")

    # --- operations ------------------------------------------------------------------------
    def submit(self, prompt: str, *, frames: Sequence[Any] | None = None, input: str | None = None,
               frame_range: tuple[int, int] | None = None, settings: Any = None, output: dict | None = None,
               job: str | None = None, retry: bool = False, preview_frame: int | None = None,
               events: bool = True) -> dict[str, Any]:
        """Queue an edit (or a PREVIEW when `preview_frame` is given); returns ACCEPTED."""
        header: dict[str, Any] = {"type": "SUBMIT" if preview_frame is None else "PREVIEW",
                                  "job": job or job_id(), "prompt": prompt, "events": events}
        if settings is not None:
            header["settings"] = settings.to_dict() if hasattr(settings, "to_dict") else dict(settings)
        if preview_frame is not None:
            header["frame"] = preview_frame
        if output is not None:
            header["output"] = output
        if retry:
            header["retry"] = True
        buffers: list[Any] = []
        if frames is not None:
            header["frames"] = P.describe(frames)
            buffers = P.as_buffers(frames)
        elif input is not None:
            header["input"] = {"path": str(input), "range": list(frame_range) if frame_range else None}
        return self.request(header, buffers)

    def preview(self, prompt: str, frame: int = 0, **kwargs: Any) -> dict[str, Any]:
        return self.submit(prompt, preview_frame=frame, **kwargs)

    def status(self, job: str, watch: bool = False) -> dict[str, Any]:
        return self.request({"type": "STATUS", "job": job, "watch": watch})["job"]

    def list(self) -> dict[str, Any]:
        return self.request({"type": "LIST"})

    def cancel(self, job: str) -> dict[str, Any]:
        return self.request({"type": "CANCEL", "job": job})["job"]

    def heartbeat(self) -> dict[str, Any]:
        return self.request({"type": P.HEARTBEAT})

    def release(self, job: str) -> int:
        try:
            return self.request({"type": "RELEASE", "job": job})["freed_bytes"]
        except EngineError as exc:
            if exc.code == "unknown_job":
                return 0  # already released (perhaps by a resend whose reply was lost)
            raise

    def shutdown(self, token: str) -> None:
        self.request({"type": "SHUTDOWN", "token": token}, retry=False)

    def result(self, job: str, *, pixels: bool = True, preview: bool = False) -> Result:
        """RESULT, fetching inline frames page by page (each page within the engine's message limit);
        with `preview`, a running job's first finished keyframe when there is one yet."""
        head = self.request({"type": "RESULT", "job": job, "pixels": False, "preview": preview})
        res = Result(job, head["status"], head["state"], head.get("reason"), head.get("code"), head.get("stats"),
                     head.get("output"), warnings=head.get("warnings"))
        if head.get("preview"):
            res.preview = (head["preview"]["frame"], P.to_arrays(head["preview"]["frames"], head["_buffers"])[0])
        if res.status != P.DONE or not pixels or (res.output or {}).get("mode") != "inline":
            return res
        total = res.output["total"]
        desc = res.output["frames"]
        limit = self.info.get("limits", {}).get("max_message_bytes", P.Limits().max_message_bytes)
        page = max(1, (limit - 4096) // P.frame_bytes({**desc, "count": 1}))
        frames: list[Any] = []
        while len(frames) < total:
            reply = self.request({"type": "RESULT", "job": job, "offset": len(frames), "count": page})
            got = reply["output"]["frames"]
            if got["count"] == 0:
                break
            frames += P.to_arrays(got, reply["_buffers"])
        res.frames = frames
        return res

    # --- progress --------------------------------------------------------------------------
    def events(self, job: str, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """PROGRESS and STATE events of `job` until it ends (the last one is its final STATE).

        Raises EngineGone when neither events nor heartbeats arrive for `dead_after` seconds
        (after trying to reconnect), EngineHung when the worker reports no progress for
        `hung_after` seconds, TimeoutError after `timeout` seconds overall.
        """
        end = time.monotonic() + timeout if timeout else None
        info = self.status(job, watch=True)
        if info["state"] in P.TERMINAL or info["state"] == "unknown":
            yield {"type": P.STATE, "job": info}
            return
        next_ping = time.monotonic()
        while True:
            for ev in list(self.events_buf):
                if ev.get("job") == job or (isinstance(ev.get("job"), dict) and ev["job"].get("id") == job):
                    self.events_buf.remove(ev)
                    yield ev
                    if ev["type"] == P.STATE and ev["job"]["state"] in P.TERMINAL:
                        return
            now = time.monotonic()
            if end is not None and now > end:
                raise TimeoutError(f"job {job} did not finish within {timeout} s.")
            if now >= next_ping:  # keeps this client a live peer and proves the engine answers
                next_ping = now + 1.0
                beat = self.request({"type": P.HEARTBEAT}, timeout=self.dead_after)
                if beat.get("job") != job and self.status(job, watch=True)["state"] in P.TERMINAL:
                    info = self.status(job)
                    yield {"type": P.STATE, "job": info}
                    return
                age = beat.get("worker_beat_age_s") or 0
                if beat.get("worker") == "dead":
                    raise EngineHung("the engine's worker has stopped; restart the engine.")
                if self.hung_after and beat.get("busy") and age > self.hung_after:
                    raise EngineHung(f"the engine's worker has reported nothing for {age:.0f} s.")
            msg = self._recv(0.2)
            if msg is not None and msg.header.get("re") is None and msg.type != P.HEARTBEAT:
                self.events_buf.append(_event(msg))
            if time.monotonic() - self.last_heard > self.dead_after:
                raise EngineGone(f"nothing heard from the engine at {self.address} for {self.dead_after:.0f} s.")

    def wait(self, job: str, timeout: float | None = None, on_event=None) -> dict[str, Any]:
        """Block until `job` ends; returns its final JobInfo."""
        final = None
        for ev in self.events(job, timeout):
            if on_event is not None:
                on_event(ev)
            final = ev
        return final["job"]
