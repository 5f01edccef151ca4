"""The ipfacediff wire format, implemented once (contract: docs/protocol.md).

In: lists of ZeroMQ message parts (bytes, buffers or zmq.Frame). Out: validated `Message`
objects (header dict + raw pixel buffers), or `ProtocolError(code, message)`. Also packs
headers and frames for sending. Imports only the standard library, msgpack, the torch-free
engine.settings / engine.prompts (the prompt and path limits) and (lazily) numpy, so clients
without torch can use it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Sequence

import msgpack

from engine.prompts import prompt_problem
from engine.settings import MAX_PATH_CHARS, MAX_PROMPT_CHARS

VERSION = 1
SUPPORTED_VERSIONS = (1,)
MAGIC = b"IPFD"

# Pixel sample types on the wire: name -> (item size, numpy little-endian typestr).
DTYPES = {"uint8": (1, "|u1"), "uint16": (2, "<u2"), "float16": (2, "<f2"), "float32": (4, "<f4")}
CHANNELS = (3, 4)
OUTPUT_FORMATS = ("png", "tif", "exr")
JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
MAX_HEADER_BYTES = 64 * 1024
DEFAULT_ADDRESS = "tcp://127.0.0.1:5555"  # where `ipfacediff serve` binds and clients look by default

# Error codes (docs/protocol.md, "Errors").
ERROR_CODES = (
    "bad_version", "bad_message", "bad_field", "unknown_type", "too_large", "bad_frames", "bad_settings",
    "path_refused", "unknown_job", "conflict", "job_active", "queue_full", "unauthorised", "user_error",
    "disk_full", "unavailable", "internal",
)

# Reply and event type names (docs/protocol.md, "Replies" and "Events").
HELLO, ACCEPTED, STATE, LIST, RESULT, RELEASED = "HELLO", "ACCEPTED", "STATE", "LIST", "RESULT", "RELEASED"
HEARTBEAT, OK, ERROR, PROGRESS = "HEARTBEAT", "OK", "ERROR", "PROGRESS"

# RESULT statuses and job states.
PENDING, DONE, FAILED, UNKNOWN = "PENDING", "DONE", "FAILED", "UNKNOWN"
STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
TERMINAL = ("done", "failed", "cancelled", "interrupted")


class ProtocolError(Exception):
    """A request the engine answers with ERROR; `code` is one of ERROR_CODES."""

    def __init__(self, code: str, message: str, re_: Any = None):
        super().__init__(message)
        self.code, self.message, self.re = code, message, re_


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request may carry; the engine reports them in HELLO."""

    max_parts: int = 2 + 4096
    max_part_bytes: int = 512 * 1024 * 1024
    max_message_bytes: int = 4 * 1024 * 1024 * 1024
    max_frames: int = 4096
    max_side: int = 8192
    max_queue: int = 256

    def to_dict(self) -> dict[str, int]:
        return {**{f.name: getattr(self, f.name) for f in fields(self)},
                "max_header_bytes": MAX_HEADER_BYTES, "max_prompt_chars": MAX_PROMPT_CHARS}


@dataclass
class Message:
    """One decoded message: header (a dict with at least `type`) and raw buffers after it."""

    header: dict[str, Any]
    buffers: list[Any] = field(default_factory=list)
    version: int = VERSION

    @property
    def type(self) -> str:
        return self.header["type"]


def version_frame(version: int = VERSION) -> bytes:
    return MAGIC + str(version).encode()


def pack(header: dict[str, Any], buffers: Sequence[Any] = (), version: int = VERSION) -> list[Any]:
    """Header dict + raw buffers -> message parts (buffers are passed through, not copied)."""
    return [version_frame(version), msgpack.packb(header, use_bin_type=True), *buffers]


def _nbytes(part: Any) -> int:
    if hasattr(part, "buffer"):  # zmq.Frame
        return len(part.buffer)
    return memoryview(part).nbytes


def _bytes(part: Any) -> bytes:
    return part.bytes if hasattr(part, "bytes") else bytes(part)


def parse_version(part: Any) -> int:
    raw = _bytes(part) if _nbytes(part) <= 16 else b""
    if re.fullmatch(rb"IPFD[1-9][0-9]{0,3}", raw) is None:  # no sign, no leading zero: IPFD01 is not version 1
        raise ProtocolError("bad_version", "the first part must be the version frame b'IPFD<n>', e.g. b'IPFD1'.")
    return int(raw[4:])


def request_id(parts: Sequence[Any]) -> Any:
    """The request id of a message refused before its header was read, when it can be read at all."""
    if len(parts) < 2 or _nbytes(parts[1]) > MAX_HEADER_BYTES:
        return None
    try:
        header = msgpack.unpackb(_bytes(parts[1]), raw=False, strict_map_key=False)
    except Exception:
        return None
    return header.get("id") if isinstance(header, dict) and _valid_request_id(header.get("id")) else None


def unpack(parts: Sequence[Any], limits: Limits = Limits(), *, request: bool = True) -> Message:
    """Validate sizes, version and header of a received message (without the ROUTER envelope)."""
    try:
        return _unpack(parts, limits, request)
    except ProtocolError as exc:
        if exc.re is None:
            exc.re = request_id(parts)
        raise


def _unpack(parts: Sequence[Any], limits: Limits, request: bool) -> Message:
    if len(parts) < 2:
        raise ProtocolError("bad_message", "a message needs a version frame and a header frame.")
    version = parse_version(parts[0])
    if version not in SUPPORTED_VERSIONS:
        raise ProtocolError("bad_version", f"protocol version {version} is not supported; this engine speaks "
                                           f"{list(SUPPORTED_VERSIONS)}.")
    if len(parts) > limits.max_parts:
        raise ProtocolError("too_large", f"the message has {len(parts)} parts; the limit is {limits.max_parts}.")
    total = sum(_nbytes(p) for p in parts)
    if total > limits.max_message_bytes:
        raise ProtocolError("too_large", f"the message has {total} bytes; the limit is {limits.max_message_bytes}.")
    if _nbytes(parts[1]) > MAX_HEADER_BYTES:
        raise ProtocolError("too_large", f"the header is larger than {MAX_HEADER_BYTES} bytes.")
    try:
        header = msgpack.unpackb(_bytes(parts[1]), raw=False, strict_map_key=False, use_list=True)
    except Exception as exc:  # msgpack raises several types for malformed input
        raise ProtocolError("bad_message", f"the header is not valid msgpack ({type(exc).__name__}).") from None
    if not isinstance(header, dict):
        raise ProtocolError("bad_message", "the header must be a msgpack map.")
    re_ = header.get("id") if _valid_request_id(header.get("id")) else None
    if not all(isinstance(k, str) for k in header):
        raise ProtocolError("bad_message", "the header map's keys must all be strings (e.g. 'type', 'id').", re_)
    kind = header.get("type")
    if request:
        if not isinstance(kind, str) or kind not in REQUESTS:
            raise ProtocolError("unknown_type", f"unknown message type {kind!r}; expected one of "
                                                f"{', '.join(REQUESTS)}.", re_)
        if re_ is None:
            raise ProtocolError("bad_field", "'id' must be a string of 1-64 characters or an integer "
                                             "0..2^63-1.", None)
        try:
            _check_fields(header, REQUESTS[kind])
        except ProtocolError as exc:
            exc.re = re_
            raise
    elif not isinstance(kind, str):
        raise ProtocolError("bad_message", "the header has no 'type'.")
    return Message(header, list(parts[2:]), version)


def _valid_request_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 <= value < 2 ** 63
    return isinstance(value, str) and 1 <= len(value) <= 64


# --- field checks ------------------------------------------------------------------------

Check = Callable[[Any], bool]


def _str(max_len: int, min_len: int = 0) -> Check:
    return lambda v: isinstance(v, str) and min_len <= len(v) <= max_len


def _int(low: int = 0, high: int = 2 ** 63 - 1) -> Check:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _bool(v: Any) -> bool:
    return isinstance(v, bool)


def _job_id(v: Any) -> bool:
    return isinstance(v, str) and JOB_ID.fullmatch(v) is not None


def _settings(v: Any) -> bool:
    return isinstance(v, dict) and len(v) <= 64 and all(isinstance(k, str) for k in v)


def _frames(v: Any) -> bool:
    return (isinstance(v, dict) and set(v) == {"dtype", "shape", "count"} and isinstance(v["dtype"], str)
            and v["dtype"] in DTYPES
            and isinstance(v["shape"], list) and len(v["shape"]) == 3 and all(_int(1)(d) for d in v["shape"])
            and v["shape"][2] in CHANNELS and _int(1)(v["count"]))


def _range(v: Any) -> bool:
    return v is None or (isinstance(v, list) and len(v) == 2 and all(_int(-2 ** 31, 2 ** 31)(x) for x in v)
                         and v[0] <= v[1])


def _input(v: Any) -> bool:
    return (isinstance(v, dict) and set(v) <= {"path", "range"} and _str(MAX_PATH_CHARS, 1)(v.get("path"))
            and _range(v.get("range")))


def _output(v: Any) -> bool:
    if not isinstance(v, dict) or not set(v) <= {"mode", "dir", "format", "start", "video", "overwrite"}:
        return False
    if v.get("mode") == "inline":
        return set(v) == {"mode"}
    return (v.get("mode") == "path" and _str(MAX_PATH_CHARS, 1)(v.get("dir")) and _bool(v.get("overwrite", False))
            and v.get("format", "png") in OUTPUT_FORMATS and _int(0, 2 ** 31)(v.get("start", 0))
            and (v.get("video") is None or _str(MAX_PATH_CHARS, 1)(v.get("video"))))


# name -> (check, required)
_COMMON = {"type": (_str(16), True), "id": (lambda v: _valid_request_id(v), True)}
_SUBMIT = {"job": (_job_id, True), "prompt": (lambda v: prompt_problem(v) is None, True), "settings": (_settings, False),
           "frames": (_frames, False), "input": (_input, False), "output": (_output, False),
           "retry": (_bool, False), "events": (_bool, False)}
REQUESTS: dict[str, dict[str, tuple[Check, bool]]] = {
    "HELLO": {"versions": (lambda v: isinstance(v, list) and 1 <= len(v) <= 16 and all(_int(1, 999)(x) for x in v),
                           True), "client": (_str(128), False)},
    "SUBMIT": _SUBMIT,
    "PREVIEW": {**_SUBMIT, "frame": (_int(0, 2 ** 31), False)},
    "STATUS": {"job": (_job_id, True), "watch": (_bool, False)},
    "LIST": {},
    "CANCEL": {"job": (_job_id, True)},
    "RESULT": {"job": (_job_id, True), "offset": (_int(0, 2 ** 31), False), "count": (_int(1, 2 ** 31), False),
               "pixels": (_bool, False), "preview": (_bool, False)},
    "RELEASE": {"job": (_job_id, True)},
    "HEARTBEAT": {},
    "SHUTDOWN": {"token": (_str(256, 1), True)},
}
FIELD_PROBLEM: dict[str, Callable[[Any], str]] = {"prompt": prompt_problem}
"""Fields whose own check words the whole error (engine.prompts' sentence, which clients such
as the OFX plugin show as is); the others say what FIELD_HELP expects."""
FIELD_HELP = {
    "job": "a job id of 1-128 characters from A-Z a-z 0-9 . _ : - (starting with a letter or digit)",
    "frames": "a map {dtype: uint8|uint16|float16|float32, shape: [H, W, 3|4], count: n}",
    "input": "a map {path: string, range: [first, last] or nil}",
    "output": "{mode: inline} or {mode: path, dir: string, format: png|tif|exr, start: int, video: string, "
              "overwrite: bool}",
    "versions": "a list of 1-16 protocol versions this client speaks (integers 1-999), e.g. [1]",
    "settings": "a map of engine setting names to values",
}


def handler_table(handlers: dict[str, Any]) -> dict[str, Any]:
    """`handlers` (request type -> handler), refused unless it answers exactly the types in REQUESTS:
    a request type without a handler is a mistake found at import, not an `internal` reply."""
    missing, extra = sorted(set(REQUESTS) - set(handlers)), sorted(set(handlers) - set(REQUESTS))
    if missing or extra:
        raise TypeError(f"the handler table lacks {missing} and has {extra} beyond the protocol's requests.")
    return dict(handlers)


def _check_fields(header: dict[str, Any], spec: dict[str, tuple[Check, bool]]) -> None:
    allowed = {**_COMMON, **spec}
    unknown = sorted(str(k) for k in header if k not in allowed)
    if unknown:
        raise ProtocolError("bad_field", f"unknown field(s) for {header['type']}: {', '.join(unknown)}.")
    for name, (check, required) in allowed.items():
        if name not in header:
            if required:
                raise ProtocolError("bad_field", f"{header['type']} needs the field '{name}'.")
            continue
        if not check(header[name]):
            if name in FIELD_PROBLEM:
                raise ProtocolError("bad_field", FIELD_PROBLEM[name](header[name]))
            hint = FIELD_HELP.get(name, "see docs/protocol.md")
            raise ProtocolError("bad_field", f"'{name}' of {header['type']} is invalid; expected {hint}.")


# --- frames ------------------------------------------------------------------------------

def frame_bytes(desc: dict[str, Any]) -> int:
    return math.prod(desc["shape"]) * DTYPES[desc["dtype"]][0]


def check_frames(desc: dict[str, Any] | None, buffers: Sequence[Any], limits: Limits) -> None:
    """The raw parts after the header must match the `frames` descriptor exactly."""
    if desc is None:
        if buffers:
            raise ProtocolError("bad_frames", f"{len(buffers)} pixel part(s) were sent without a 'frames' descriptor.")
        return
    h, w, _ = desc["shape"]
    if desc["count"] > limits.max_frames:
        raise ProtocolError("too_large", f"{desc['count']} frames is more than the limit of {limits.max_frames}.")
    if max(h, w) > limits.max_side:
        raise ProtocolError("too_large", f"frames of {w}x{h} exceed the limit of {limits.max_side} pixels a side.")
    if len(buffers) != desc["count"]:
        raise ProtocolError("bad_frames", f"'frames' announces {desc['count']} frame(s) but {len(buffers)} "
                                          "pixel part(s) follow the header.")
    want = frame_bytes(desc)
    for i, part in enumerate(buffers):
        if _nbytes(part) != want:
            raise ProtocolError("bad_frames", f"pixel part {i} has {_nbytes(part)} bytes; {desc['dtype']} "
                                              f"{desc['shape']} needs {want}.")


def describe(arrays: Sequence[Any]) -> dict[str, Any]:
    """`frames` descriptor for a list of same-shaped H×W×C arrays (numpy or anything with dtype/shape)."""
    if not arrays:
        raise ValueError("no frames")
    first = arrays[0]
    name = str(first.dtype)
    if name not in DTYPES:
        raise ValueError(f"frames must be one of {', '.join(DTYPES)}; got {name}")
    shape = list(first.shape)
    for a in arrays:
        if list(a.shape) != shape or str(a.dtype) != name:
            raise ValueError("all frames must have the same shape and dtype")
    return {"dtype": name, "shape": shape, "count": len(arrays)}


def as_buffers(arrays: Sequence[Any]) -> list[memoryview]:
    """Zero-copy, C-contiguous little-endian views of the arrays, one part per frame."""
    out = []
    for a in arrays:
        if hasattr(a, "dtype") and a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        view = memoryview(a)
        if not view.c_contiguous:
            import numpy as np

            view = memoryview(np.ascontiguousarray(a))
        out.append(view.cast("B"))
    return out


def to_arrays(desc: dict[str, Any], buffers: Sequence[Any]) -> list[Any]:
    """numpy views (read-only, no copy) of received pixel parts."""
    import numpy as np

    dtype = np.dtype(DTYPES[desc["dtype"]][1])
    views = []
    for part in buffers:
        raw = part.buffer if hasattr(part, "buffer") else part
        views.append(np.frombuffer(raw, dtype=dtype).reshape(desc["shape"]))
    return views


def error(code: str, message: str, re_: Any = None) -> dict[str, Any]:
    return {"type": ERROR, "re": re_, "code": code, "message": message}


def result_status(state: str | None) -> str:
    if state in ("queued", "running"):
        return PENDING
    if state == "done":
        return DONE
    if state in ("failed", "cancelled", "interrupted"):
        return FAILED
    return UNKNOWN


def endpoint_is_local(addr: str) -> bool:
    """True for ipc:// and inproc:// and for tcp binds on loopback (127.0.0.0/8, ::1, localhost)."""
    if addr.startswith(("ipc://", "inproc://")):
        return True
    m = re.fullmatch(r"tcp://(\[[^\]]+\]|[^:/]+):(\d+|\*)", addr)
    if not m:
        return False
    host = m.group(1).strip("[]")
    return host == "localhost" or host == "::1" or re.fullmatch(r"127(\.\d{1,3}){3}", host) is not None
