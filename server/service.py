"""The engine process's I/O loop: a ROUTER socket answering every request while the worker runs jobs.

In: a loaded editor (anything with `.edit` and `.models`), a bind address, a state dir and
options. Out: replies and events on the socket until SHUTDOWN or `stop()`. Threads: this
loop (owns the ROUTER), one I/O thread (SUBMIT ingest, RESULT reads and the retention
sweep, which touch disk) and the worker; the other two hand finished messages back over an
inproc PUSH/PULL pair. Each client's requests are answered in the order it sent them: while
one of its requests is with the I/O thread, or a reply to it waits for room in its receive
queue, its later requests wait in a per-client backlog. Replies are never dropped (held
until the client has room); events are (STATUS and RESULT tell the truth).
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import queue
import secrets
import logging
import shutil
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from engine.errors import UserError
from engine.prompts import prompt_warnings
from engine.settings import Settings
from server import jobs
from server import protocol as P
from server import cache as cache_defaults
from server.cache import InversionCache
from server.jobs import Job, JobStore, is_disk_full, job_info
from server.joblog import JobLog
from server.security import ZAP_DOMAIN, MediaRoots, load_server_keys, start_authenticator
from server.worker import Worker

ENGINE_VERSION = "0.1.0"
CAPABILITIES = ["inline_frames", "path_io", "preview", "cancel_running", "inversion_cache", "result_paging",
                "persistence", "retry", "keyframe_preview", "overwrite", "ordered", "retention"]
MAX_BACKLOG = 8192  # requests of all clients waiting behind earlier ones; beyond it the engine stops reading
# Tags of what the I/O and worker threads hand to the loop: a reply, an event, an I/O item finished.
REPLY, EVENT, IO_DONE = b"r", b"e", b"d"


@dataclass
class Options:
    bind: str = P.DEFAULT_ADDRESS
    state_dir: Path = Path("ipfacediff-state")
    media_roots: list[str] = field(default_factory=list)
    limits: P.Limits = field(default_factory=P.Limits)
    cache_bytes: int = cache_defaults.DEFAULT_BYTES
    cache_disk_bytes: int = cache_defaults.DEFAULT_DISK_BYTES
    keys_dir: Path | None = None
    curve: bool = False
    heartbeat_s: float = 1.0
    peer_ttl_s: float = 60.0
    fsync: bool = True
    sndhwm: int = 64
    rcvhwm: int = 64
    keep_results_s: float = jobs.KEEP_RESULTS_S  # finished jobs are released this long after they end
    max_results_bytes: int = jobs.MAX_RESULTS_BYTES  # and the oldest first while their files exceed this
    min_free_bytes: int = jobs.MIN_FREE_BYTES  # SUBMIT is refused when its input would leave less free
    stuck_after_s: float = 600.0  # a running worker silent this long is reported stuck
    sweep_s: float = 60.0  # seconds between retention sweeps
    max_pending: int = 1024  # requests one client may have waiting; later ones are dropped (docs/protocol.md)


def fingerprint(header: dict[str, Any]) -> str:
    """Identity of a submission for resend detection: everything but the request id and delivery flags."""
    body = {k: v for k, v in header.items() if k not in ("id", "retry", "events")}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class Service:
    def __init__(self, editor: Any, options: Options, log: logging.Logger | None = None):
        self.editor, self.opt = editor, options
        self.logger = log or logging.getLogger("ipfacediff.engine")  # `serve` configures it (server.joblog)
        self.log, self.joblog = self.logger.info, JobLog(self.logger)
        self.limits = options.limits
        models = editor.models
        self.model_identity = models.identity_string
        self.random_weights = bool(models.random_weights)
        self.device, self.dtype = str(models.device), str(models.dtype).removeprefix("torch.")
        self.roots = MediaRoots(options.media_roots)
        self.store = JobStore(options.state_dir, fsync=options.fsync)
        self.cache = InversionCache(options.cache_bytes, options.state_dir / "inversions", options.cache_disk_bytes)
        self.token = self._write_token(options.state_dir)
        self.ctx = zmq.Context()
        self.outbox = f"inproc://ipfacediff-out-{id(self)}"
        self.io_jobs: queue.Queue = queue.Queue()
        self.peers: dict[bytes, float] = {}
        self.stopping = threading.Event()
        self.auth = None
        self.endpoint: str | None = None
        self.ready = threading.Event()
        self._local = threading.local()
        self.router: zmq.Socket | None = None
        self.loop_thread: int | None = None
        self.io_busy: dict[bytes, int] = {}  # I/O items outstanding per client
        self.backlog: dict[bytes, deque] = {}  # requests waiting for their client's earlier ones
        self.held: dict[bytes, deque] = {}  # replies waiting for room in their client's queue

    @staticmethod
    def _write_token(state_dir: Path) -> str:
        token = secrets.token_hex(16)
        path = state_dir / "shutdown.token"
        fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token)
        os.replace(path.with_suffix(".tmp"), path)
        return token

    # --- sockets -----------------------------------------------------------------------
    def _router(self) -> zmq.Socket:
        sock = self.ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        sock.setsockopt(zmq.SNDHWM, self.opt.sndhwm)
        sock.setsockopt(zmq.RCVHWM, self.opt.rcvhwm)
        sock.setsockopt(zmq.MAXMSGSIZE, self.limits.max_part_bytes)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.HEARTBEAT_IVL, 2000)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 10000)
        if self.opt.curve or not P.endpoint_is_local(self.opt.bind):
            if self.opt.keys_dir is None:
                raise UserError(f"binding {self.opt.bind} needs CURVE keys; create them with `ipfacediff keys "
                                "--dir KEYS --client NAME` and pass --keys KEYS.")
            public, secret = load_server_keys(self.opt.keys_dir)
            self.auth = start_authenticator(self.ctx, self.opt.keys_dir / "clients")
            sock.curve_server = True
            sock.curve_publickey, sock.curve_secretkey = public, secret
            sock.zap_domain = ZAP_DOMAIN.encode()
        sock.bind(self.opt.bind)
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        return sock

    def _push(self) -> zmq.Socket:
        """This thread's PUSH socket to the I/O loop (one per thread: zmq sockets are not thread-safe)."""
        sock = getattr(self._local, "push", None)
        if sock is None:
            sock = self.ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(self.outbox)
            self._local.push = sock
        return sock

    def emit(self, identities: list[bytes], header: dict[str, Any], buffers: list[Any], tag: bytes = EVENT) -> None:
        """Thread-safe: queue one message to each identity (sent by the loop, never blocking it)."""
        parts = P.pack(header, buffers)
        push = self._push()
        for ident in identities:
            push.send_multipart([tag, ident, *parts], copy=False)

    def reply(self, ident: bytes, header: dict[str, Any], buffers: list[Any] = ()) -> None:
        """The answer to a request: sent at once from the loop (so it leaves before any later
        request of the client is handled), through the loop from the other threads."""
        if header["type"] == P.ERROR:
            self.joblog.refused(ident, header)
        if threading.get_ident() == self.loop_thread:
            self._deliver(ident, P.pack(header, list(buffers)), reliable=True)
        else:
            self.emit([ident], header, list(buffers), REPLY)

    # --- main loop ---------------------------------------------------------------------
    def run(self) -> None:
        router = self.router = self._router()
        self.loop_thread = threading.get_ident()
        inbox = self.ctx.socket(zmq.PULL)
        inbox.bind(self.outbox)
        self.worker = Worker(self.store, self.editor, self.cache, self.roots, self.emit, self.model_identity,
                             self.random_weights, self.joblog)
        self.worker.start()
        io = threading.Thread(target=self._io_loop, name="ipfacediff-io", daemon=True)
        io.start()
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(inbox, zmq.POLLIN)
        self.joblog.lifecycle(f"ready on {self.endpoint} (model {self.model_identity} on {self.device}; "
                 f"{len(self.store.queue)} queued job(s) recovered)")
        self.ready.set()
        next_beat = next_sweep = time.monotonic()
        reading = True
        try:
            while not self.stopping.is_set():
                wait = 10 if self.held else max(0, int((next_beat - time.monotonic()) * 1000))
                events = dict(poller.poll(timeout=wait))
                if inbox in events:
                    for _ in range(256):  # forward what the threads produced, bounded per turn
                        try:
                            parts = inbox.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        self._from_thread(parts)
                if self.held:
                    self._retry_held()
                if router in events:
                    for _ in range(64):
                        try:
                            parts = router.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        self._handle(parts)
                if reading != (sum(map(len, self.backlog.values())) < MAX_BACKLOG):
                    reading = not reading  # back-pressure: leave requests in libzmq's queues
                    (poller.register(router, zmq.POLLIN) if reading else poller.unregister(router))
                now = time.monotonic()
                if now >= next_beat:
                    next_beat = now + self.opt.heartbeat_s
                    self._heartbeat()
                if now >= next_sweep:
                    next_sweep = now + self.opt.sweep_s
                    self.io_jobs.put(("sweep", None, None))
        finally:
            self._shutdown(router, inbox)

    # --- delivery and per-client order -------------------------------------------------------
    def _from_thread(self, parts: list[Any]) -> None:
        tag, ident = parts[0].bytes, parts[1].bytes
        if tag == IO_DONE:
            self.io_busy[ident] -= 1
            if not self.io_busy[ident]:
                del self.io_busy[ident]
                self._drain(ident)
        else:
            self._deliver(ident, parts[2:], reliable=tag == REPLY)

    def _deliver(self, ident: bytes, parts: list[Any], reliable: bool) -> None:
        """Send now; a reply that finds the client's queue full (or replies already held) is held."""
        if reliable and ident in self.held:
            self.held[ident].append(parts)
            return
        try:
            self.router.send_multipart([ident, *parts], zmq.NOBLOCK, copy=False)
        except zmq.Again:
            if reliable:
                self.held[ident] = deque([parts])
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                raise
            self._forget(ident)

    def _retry_held(self) -> None:
        for ident in list(self.held):
            waiting = self.held[ident]
            while waiting:
                try:
                    self.router.send_multipart([ident, *waiting[0]], zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                except zmq.ZMQError as exc:
                    if exc.errno != zmq.EHOSTUNREACH:
                        raise
                    self._forget(ident)
                    break
                waiting.popleft()
            if not waiting and ident in self.held:
                del self.held[ident]
                self._drain(ident)

    def _forget(self, ident: bytes) -> None:
        """The client is gone: drop what waits for it."""
        self.peers.pop(ident, None)
        self.held.pop(ident, None)
        self.backlog.pop(ident, None)

    def _waiting(self, ident: bytes) -> bool:
        return ident in self.io_busy or ident in self.held or bool(self.backlog.get(ident))

    def _drain(self, ident: bytes) -> None:
        """Handle the client's waiting requests in order, until one of them has to wait again."""
        waiting = self.backlog.get(ident)
        while waiting and ident not in self.io_busy and ident not in self.held:
            self._process(ident, waiting.popleft())
        if not waiting:
            self.backlog.pop(ident, None)

    def _to_io(self, what: str, ident: bytes, msg: P.Message) -> None:
        self.io_busy[ident] = self.io_busy.get(ident, 0) + 1
        self.io_jobs.put((what, ident, msg))

    def _heartbeat(self) -> None:
        now = time.monotonic()
        self.peers = {p: t for p, t in self.peers.items() if now - t < self.opt.peer_ttl_s}
        if not self.peers:
            return
        self.emit(list(self.peers), self._beat(), [])

    def _beat(self) -> dict[str, Any]:
        """HEARTBEAT fields: `worker` is `alive`, `stuck` (running, silent for `stuck_after_s`) or `dead`."""
        running = self.store.running
        age = time.monotonic() - self.worker.beat
        state = ("dead" if not self.worker.is_alive() else
                 "stuck" if running is not None and age > self.opt.stuck_after_s else "alive")
        return {"type": P.HEARTBEAT, "time": time.time(), "busy": running is not None, "job": running,
                "worker": state, "worker_beat_age_s": round(age, 3), "queued": len(self.store.queue)}

    def stop(self) -> None:
        self.stopping.set()

    def _shutdown(self, router: zmq.Socket, inbox: zmq.Socket) -> None:
        self.worker.stopping.set()
        self.worker.join(timeout=60)
        self.io_jobs.put(None)
        self.cache.close()  # finish writing inversions already started
        router.close(linger=0)
        inbox.close(linger=0)
        if self.auth is not None:
            self.auth.stop()
        queued = len(self.store.queue)
        self.store.close()  # the context is left to process exit: other threads' PUSH sockets may linger
        self.joblog.lifecycle(f"shut down; {queued} queued job(s) kept for the next start")

    # --- requests ----------------------------------------------------------------------
    def _handle(self, parts: list[Any]) -> None:
        ident = parts[0].bytes
        self.peers[ident] = time.monotonic()
        if self._waiting(ident):
            waiting = self.backlog.setdefault(ident, deque())
            if len(waiting) < self.opt.max_pending:  # else the client broke the pipelining rule: dropped
                waiting.append(parts[1:])
        else:
            self._process(ident, parts[1:])

    def _process(self, ident: bytes, parts: list[Any]) -> None:
        re_ = None
        try:
            msg = P.unpack(parts, self.limits)
            re_ = msg.header["id"]
            self.joblog.request(ident, msg.header)
            self.HANDLERS[msg.type](self, ident, msg)
        except P.ProtocolError as exc:
            self.reply(ident, P.error(exc.code, exc.message, exc.re if exc.re is not None else re_))
        except UserError as exc:
            self.reply(ident, P.error("user_error", str(exc), re_))
        except Exception as exc:  # never let one request take the loop down
            self.logger.error(f"internal error answering a request: {type(exc).__name__}: {exc}")
            self.reply(ident, P.error("internal", f"internal error ({type(exc).__name__}).",
                                      re_ if re_ is not None else P.request_id(parts)))

    def _job(self, job_id: str) -> Job:
        job = self.store.jobs.get(job_id)
        if job is None:
            raise P.ProtocolError("unknown_job", f"no job {job_id!r} is known to this engine.")
        return job

    def _on_hello(self, ident: bytes, msg: P.Message) -> None:
        common = sorted(set(msg.header["versions"]) & set(P.SUPPORTED_VERSIONS))
        if not common:
            raise P.ProtocolError("bad_version", f"no common protocol version; this engine speaks "
                                                 f"{list(P.SUPPORTED_VERSIONS)}.")
        self.reply(ident, {"type": P.HELLO, "re": msg.header["id"], "version": common[-1],
                           "engine_version": ENGINE_VERSION, "capabilities": CAPABILITIES,
                           "model": self.model_identity, "random_weights": self.random_weights,
                           "device": self.device, "dtype": self.dtype, "limits": {**self.limits.to_dict(), "max_pending": self.opt.max_pending},
                           "heartbeat_s": self.opt.heartbeat_s, "media_roots": bool(self.roots.roots)})

    def _on_submit(self, ident: bytes, msg: P.Message) -> None:
        h = msg.header
        if ("frames" in h) == ("input" in h):
            raise P.ProtocolError("bad_field", f"{h['type']} needs exactly one of 'frames' (inline) or 'input' (a path).")
        P.check_frames(h.get("frames"), msg.buffers, self.limits)
        try:
            settings = Settings.from_dict(h.get("settings") or {})
        except UserError as exc:
            raise P.ProtocolError("bad_settings", str(exc)) from None
        self.roots.resolve_settings(settings)
        if "input" in h:
            self.roots.resolve_input(h["input"]["path"])
        output = h.get("output") or {"mode": "inline"}
        if output["mode"] == "path":
            self.roots.resolve(output["dir"], for_output=True)
            if output.get("video"):
                self.roots.resolve(output["video"], for_output=True)
        if not self.worker.is_alive():
            raise P.ProtocolError("unavailable", "the engine's worker has stopped; restart the engine.")
        self._to_io("submit", ident, msg)

    def _on_status(self, ident: bytes, msg: P.Message) -> None:
        job = self.store.jobs.get(msg.header["job"])
        if job is not None and msg.header.get("watch"):
            with self.store.lock:
                job.watchers.add(ident)
        info = job_info(self.store, job) if job else {"id": msg.header["job"], "state": "unknown"}
        self.reply(ident, {"type": P.STATE, "re": msg.header["id"], "job": info})

    def _on_list(self, ident: bytes, msg: P.Message) -> None:
        with self.store.lock:
            jobs = sorted(self.store.jobs.values(), key=lambda j: j.seq)[-1000:]
            body = {"type": P.LIST, "re": msg.header["id"], "running": self.store.running,
                    "queue": list(self.store.queue), "jobs": [job_info(self.store, j) for j in jobs],
                    "cache": self.cache.info()}
        self.reply(ident, body)

    def _on_cancel(self, ident: bytes, msg: P.Message) -> None:
        job = self._job(msg.header["job"])
        self.store.cancel(job)
        info = job_info(self.store, job)
        self.reply(ident, {"type": P.STATE, "re": msg.header["id"], "job": info})
        if job.state == "cancelled":
            self.emit([w for w in job.watchers if w != ident], {"type": P.STATE, "job": info}, [])

    def _on_result(self, ident: bytes, msg: P.Message) -> None:
        self._to_io("result", ident, msg)

    def _on_release(self, ident: bytes, msg: P.Message) -> None:
        job = self._job(msg.header["job"])
        if job.state in ("queued", "running"):
            raise P.ProtocolError("job_active", f"job {job.id!r} is {job.state}; cancel it before releasing it.")
        freed = self.store.release(job)
        self.reply(ident, {"type": P.RELEASED, "re": msg.header["id"], "job": job.id, "freed_bytes": freed})

    def _on_heartbeat(self, ident: bytes, msg: P.Message) -> None:
        self.reply(ident, {**self._beat(), "re": msg.header["id"]})

    def _on_shutdown(self, ident: bytes, msg: P.Message) -> None:
        if not secrets.compare_digest(msg.header["token"].encode(), self.token.encode()):
            raise P.ProtocolError("unauthorised", "SHUTDOWN needs the token from <state-dir>/shutdown.token.")
        self.reply(ident, {"type": P.OK, "re": msg.header["id"]})
        self.joblog.lifecycle("shutdown requested")
        threading.Timer(0.2, self.stop).start()  # let the reply leave first

    # Request type -> handler; refused at import unless it covers exactly protocol.REQUESTS.
    HANDLERS = P.handler_table({
        "HELLO": _on_hello, "SUBMIT": _on_submit, "PREVIEW": _on_submit, "STATUS": _on_status, "LIST": _on_list,
        "CANCEL": _on_cancel, "RESULT": _on_result, "RELEASE": _on_release, "HEARTBEAT": _on_heartbeat,
        "SHUTDOWN": _on_shutdown,
    })

    # --- disk-touching requests (I/O thread) ----------------------------------------------
    def _io_loop(self) -> None:
        while True:
            item = self.io_jobs.get()
            if item is None:
                return
            what, ident, msg = item
            if what == "sweep":
                self._sweep()
                continue
            try:
                (self._ingest if what == "submit" else self._result)(ident, msg)
            except P.ProtocolError as exc:
                self.reply(ident, P.error(exc.code, exc.message, msg.header["id"]))
            except UserError as exc:
                self.reply(ident, P.error("user_error", str(exc), msg.header["id"]))
            except Exception as exc:
                code = "disk_full" if is_disk_full(exc) else "internal"
                self.logger.error(f"{code} error in {what}: {type(exc).__name__}: {exc}")
                self.reply(ident, P.error(code, f"{'the disk is full' if code == 'disk_full' else 'internal error'} "
                                                f"({type(exc).__name__}: {exc}).", msg.header["id"]))
            finally:
                self._push().send_multipart([IO_DONE, ident])  # after the reply, on the same pipe

    def _sweep(self) -> None:
        """Release finished jobs past `keep_results_s`, then the oldest while results exceed `max_results_bytes`."""
        try:
            for job in self.store.expired(time.time(), self.opt.keep_results_s, self.opt.max_results_bytes):
                freed = self.store.release(job)
                self.log(f"released job {job.id} ({freed} bytes; retention policy)")
        except Exception as exc:  # the next sweep tries again
            self.log(f"retention sweep failed: {type(exc).__name__}: {exc}")

    def _room_for(self, need: int) -> None:
        """Refuse a job whose input would leave less than `min_free_bytes` free on the state dir's disk."""
        free = shutil.disk_usage(self.store.dir).free
        if free - need < self.opt.min_free_bytes:
            raise P.ProtocolError("disk_full", f"the engine's disk has {free} bytes free and this job needs {need} "
                                               f"with {self.opt.min_free_bytes} kept free; release finished jobs "
                                               "or try later.")

    def warnings(self, request: dict[str, Any]) -> list[str]:
        """Where the text encoder cuts the prompt, the source prompt or the negative prompt."""
        try:
            settings = Settings.from_dict(request.get("settings") or {})
        except UserError:  # a job kept from an engine version whose settings differ: nothing to say
            return []
        return prompt_warnings(self.editor.models.tokenizer, request["prompt"].strip(), settings)

    def _ingest(self, ident: bytes, msg: P.Message) -> None:
        h = msg.header
        kind = "preview" if h["type"] == "PREVIEW" else "edit"
        fp = fingerprint(h)
        old = self.store.jobs.get(h["job"])
        if old is not None and not (h.get("retry") and old.state in ("failed", "cancelled", "interrupted")):
            if old.fingerprint != fp:
                raise P.ProtocolError("conflict", f"job id {h['job']!r} is already used by a different request; "
                                                  "choose a new id.")
            with self.store.lock:
                if h.get("events", True):
                    old.watchers.add(ident)
            info = job_info(self.store, old)
            self.reply(ident, {"type": P.ACCEPTED, "re": h["id"], "job": old.id, "duplicate": True,
                               "state": info["state"], "position": info["position"], "warnings": self.warnings(h)})
            return
        if len(self.store.queue) >= self.limits.max_queue:
            raise P.ProtocolError("queue_full", f"the queue holds {self.limits.max_queue} jobs; try again later.")
        request = {k: v for k, v in h.items() if k not in ("id", "retry", "events")}
        inputs = [p.buffer if hasattr(p, "buffer") else p for p in msg.buffers] if "frames" in h else None
        self._room_for(sum(memoryview(b).nbytes for b in inputs or []))
        if old is not None and inputs is None and old.fingerprint == fp:
            inputs = None  # a retry of a path job re-reads the path
        job = self.store.add(h["job"], kind, fp, request, inputs, retry_of=old)
        with self.store.lock:
            if h.get("events", True):
                job.watchers.add(ident)
        position = self.store.position(job)
        self.joblog.arrived(job, position)
        self.reply(ident, {"type": P.ACCEPTED, "re": h["id"], "job": job.id, "duplicate": False,
                           "state": "queued", "position": position, "warnings": self.warnings(h)})

    def _result(self, ident: bytes, msg: P.Message) -> None:
        h = msg.header
        job = self.store.jobs.get(h["job"])
        body: dict[str, Any] = {"type": P.RESULT, "re": h["id"], "job": h["job"]}
        if job is None:
            self.reply(ident, body | {"status": P.UNKNOWN, "state": "unknown",
                                      "reason": "no such job (never submitted, or released)."})
            return
        warnings = self.warnings(job.request)  # prompt cuts, known at SUBMIT; then the edit's own (no face found)
        if job.state == "done" and job.stats is not None:
            warnings += [w for w in job.stats.get("warnings", []) if w not in warnings]
        body |= {"status": P.result_status(job.state), "state": job.state, "warnings": warnings}
        if job.state != "done":
            body |= {"code": job.code, "reason": job.error, "progress": dict(job.progress) or None}
            shown = job.preview if h.get("preview") else None
            if shown is not None:
                body["preview"] = shown[0]
            self.reply(ident, body, [shown[1]] if shown is not None else [])
            return
        out = job.result or {}
        body |= {"stats": job.stats, "output": {k: v for k, v in out.items() if k != "frames"}}
        if out.get("mode") != "inline":
            self.reply(ident, body)
            return
        desc = out["frames"]
        total, size = desc["count"], P.frame_bytes(desc)
        offset = h.get("offset", 0)
        count = min(h.get("count", total), max(total - offset, 0))
        if h.get("pixels", True) and count * size + 4096 > self.limits.max_message_bytes:
            most = max(1, (self.limits.max_message_bytes - 4096) // size)
            raise P.ProtocolError("too_large", f"{count} frames do not fit one reply; ask for at most {most} "
                                               "per RESULT with offset/count.")
        buffers = []
        if h.get("pixels", True) and count > 0:
            # Zero-copy from the page cache: the frames reference the mapping until libzmq has sent them.
            with open(self.store.folder(job.id) / "result.raw", "rb") as f:
                view = memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
            buffers = [view[(offset + i) * size:(offset + i + 1) * size] for i in range(count)]
        body["output"] |= {"frames": {**desc, "count": len(buffers)}, "offset": offset, "total": total}
        self.reply(ident, body, buffers)

