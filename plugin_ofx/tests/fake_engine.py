"""A scripted stand-in for the engine, for the plugin tests that need exact control.

In: a `mode` ("ok" or one of the malformed-reply modes in MALFORMED), limits to advertise,
a RESULT page size to enforce and the warnings every RESULT carries.
Out: a ROUTER socket on loopback (`address`) answering HELLO, STATUS, SUBMIT and RESULT the
way docs/protocol.md says (built with server/protocol.py), recording every request; a
finished job's frames are a known transform of the submitted ones (`edit`), and its stats
carry an identity QC record. Runs in a thread; `close()` stops it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import msgpack
import numpy as np
import zmq

from server import protocol as P

# mode -> what goes wrong
MALFORMED = {
    "hello_not_msgpack": "HELLO reply header is not msgpack",
    "hello_not_map": "HELLO reply header is a msgpack list",
    "bad_version_frame": "replies carry version frame IPFD9",
    "status_bad_state": "STATE names a state that does not exist",
    "status_wrong_types": "STATE.job.state is an integer",
    "result_short_part": "a RESULT pixel part is one byte short",
    "result_missing_part": "RESULT announces more parts than it sends",
    "result_wrong_shape": "RESULT frames have another shape than submitted",
    "result_warnings_not_list": "RESULT warnings is a string, not a list",
    "result_warnings_not_strings": "RESULT warnings holds an integer",
}


def edit(frame: np.ndarray) -> np.ndarray:
    """The fake engine's 'edit': RGB inverted (integers: max - v; floats: 1 - v), alpha kept."""
    out = frame.copy()
    if frame.dtype.kind == "f":
        out[..., :3] = (np.float32(1.0) - frame[..., :3]).astype(np.float32)
    else:
        out[..., :3] = np.iinfo(frame.dtype).max - frame[..., :3]
    return out


class FakeEngine:
    def __init__(self, mode: str = "ok", *, max_message_bytes: int = 4 << 30, running_polls: int = 2,
                 qc: bool = True, page_frames: int | None = None, warnings: Sequence[str] = ()):
        self.mode, self.max_message_bytes, self.running_polls, self.qc = mode, max_message_bytes, running_polls, qc
        self.page_frames = page_frames  # answer too_large to RESULT pages with more frames than this
        self.warnings = list(warnings)  # RESULT `warnings`, as the engine sends them (docs/protocol.md)
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.address = f"tcp://127.0.0.1:{port}"
        self.requests: list[dict] = []
        self.submits: list[dict] = []       # SUBMIT headers
        self.uploads: dict[str, list[np.ndarray]] = {}
        self.polls: dict[str, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close(linger=0)

    def __enter__(self) -> "FakeEngine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- loop ----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self.stop.is_set():
            if not self.sock.poll(50):
                continue
            ident, *parts = self.sock.recv_multipart()
            try:
                msg = P.unpack(parts, P.Limits(max_message_bytes=1 << 40, max_part_bytes=1 << 40))
            except P.ProtocolError as exc:
                self._send(ident, P.error(exc.code, exc.message, exc.re))
                continue
            self.requests.append(msg.header)
            getattr(self, "_" + msg.type.lower())(ident, msg)

    def _send(self, ident: bytes, header: Any, buffers: list = (), *, raw_header: bytes | None = None,
              version: bytes = b"IPFD1") -> None:
        head = raw_header if raw_header is not None else msgpack.packb(header, use_bin_type=True)
        self.sock.send_multipart([ident, version, head, *buffers])

    def _reply(self, ident: bytes, header: dict, buffers: list = ()) -> None:
        version = b"IPFD9" if self.mode == "bad_version_frame" else b"IPFD1"
        self._send(ident, header, buffers, version=version)

    # --- requests ------------------------------------------------------------------------
    def _hello(self, ident: bytes, msg: P.Message) -> None:
        body = {"type": "HELLO", "re": msg.header["id"], "version": 1, "engine_version": "fake",
                "capabilities": ["inline_frames", "result_paging"], "model": "fake", "random_weights": False,
                "device": "cpu", "dtype": "float32", "heartbeat_s": 1.0, "media_roots": False,
                "limits": {**P.Limits().to_dict(), "max_message_bytes": self.max_message_bytes}}
        if self.mode == "hello_not_msgpack":
            self._send(ident, None, raw_header=b"\xc1\xc1\xc1")
        elif self.mode == "hello_not_map":
            self._send(ident, None, raw_header=msgpack.packb(["HELLO", msg.header["id"]]))
        else:
            self._reply(ident, body)

    def _job_info(self, job: str) -> dict:
        if job not in self.uploads:
            return {"id": job, "state": "unknown"}
        n = self.polls.get(job, 0)
        state = "running" if n < self.running_polls else "done"
        progress = {"stage": "edit", "step": n, "steps": self.running_polls, "fraction": n / max(1, self.running_polls),
                    "frames": len(self.uploads[job]), "frames_done": 0, "elapsed_s": 0.1, "eta_s": 1.0}
        return {"id": job, "kind": "edit", "state": state, "position": 0 if state == "running" else None,
                "created": 0, "started": 0, "finished": None, "attempts": 1, "cancel_requested": False,
                "code": None, "error": None, "progress": progress}

    def _status(self, ident: bytes, msg: P.Message) -> None:
        job = msg.header["job"]
        info = self._job_info(job)
        if job in self.uploads:
            self.polls[job] = self.polls.get(job, 0) + 1
        if self.mode == "status_bad_state" and job in self.uploads:
            info["state"] = "exploded"
        if self.mode == "status_wrong_types" and job in self.uploads:
            info["state"] = 7
        self._reply(ident, {"type": "STATE", "re": msg.header["id"], "job": info})

    def _submit(self, ident: bytes, msg: P.Message) -> None:
        h = msg.header
        self.submits.append(h)
        self.uploads[h["job"]] = [a.copy() for a in P.to_arrays(h["frames"], msg.buffers)]
        self._reply(ident, {"type": "ACCEPTED", "re": h["id"], "job": h["job"], "duplicate": False,
                            "state": "queued", "position": 1})

    def _result(self, ident: bytes, msg: P.Message) -> None:
        h = msg.header
        job = h["job"]
        frames = [edit(f) for f in self.uploads[job]]
        desc = P.describe(frames)
        total, size = len(frames), P.frame_bytes({**desc, "count": 1})
        offset = h.get("offset", 0)
        count = min(h.get("count", total), total - offset)
        pixels = h.get("pixels", True)
        if pixels and (count * size + 4096 > self.max_message_bytes
                       or (self.page_frames is not None and count > self.page_frames)):
            self._reply(ident, P.error("too_large", "too many frames for one reply.", h["id"]))
            return
        buffers = [f.tobytes() for f in frames[offset:offset + count]] if pixels else []
        announced = len(buffers)
        if self.mode == "result_short_part" and buffers:
            buffers[0] = buffers[0][:-1]
        if self.mode == "result_missing_part" and buffers:
            buffers = buffers[:-1]
        if self.mode == "result_wrong_shape":
            desc["shape"] = [desc["shape"][0] + 1, *desc["shape"][1:]]
        warnings: Any = self.warnings
        if self.mode == "result_warnings_not_list":
            warnings = "no face was found in any frame."
        if self.mode == "result_warnings_not_strings":
            warnings = [*self.warnings, 7]
        stats = {"inversion_cache": "miss"}
        if self.qc:
            stats["qc"] = {"identity_mean": 0.123, "identity_max": 0.25, "threshold": 0.4, "drifted_frames": [],
                           "embedder": "fake"}
        output = {"mode": "inline", "frames": {**desc, "count": announced}, "offset": offset, "total": total}
        self._reply(ident, {"type": "RESULT", "re": h["id"], "job": job, "status": "DONE", "state": "done",
                            "warnings": warnings, "stats": stats, "output": output}, buffers)

    def result_requests(self) -> list[dict]:
        return [r for r in self.requests if r["type"] == "RESULT" and r.get("pixels", True)]
