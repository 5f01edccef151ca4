"""`ipfacediff serve` says what happens to each job: arrival, start, each tenth of progress, the end
(DONE, or FAILED with code and reason; seconds and frames) and the shutdown; at debug level every
request and error reply; --log-level, --log-file."""

from __future__ import annotations

import io
import logging
import re
from types import SimpleNamespace

import pytest
from serverkit import EngineProcess, InProcess, clip

from server.client import EngineError
from server.joblog import JobLog, configure


def test_a_job_logs_each_tenth_of_its_progress_once():
    stream = io.StringIO()
    logger = logging.getLogger("ipfacediff.tests.tenths")
    logger.handlers[:] = [logging.StreamHandler(stream)]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    log, job = JobLog(logger), SimpleNamespace(id="j1")
    log.started(job, 24)
    for i in range(301):  # e.g. 300 UNet calls, several callbacks per percent
        log.progress(job, "invert" if i < 100 else "edit", i / 300, (300 - i) / 10)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "job j1 started: 24 frame(s)"
    assert lines[1:] == [f"job j1 {p}% ({'invert' if p < 40 else 'edit'}, ETA {eta})" for p, eta in
                         [(10, "0:27"), (20, "0:24"), (30, "0:21"), (40, "0:18"), (50, "0:15"), (60, "0:12"),
                          (70, "0:09"), (80, "0:06"), (90, "0:03")]]


def test_the_engine_logs_arrival_start_and_end_of_each_job_and_why_one_failed(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="ipfacediff.tests.engine")
    with InProcess(tmp_path / "state") as eng:
        c = eng.client()
        done = c.submit("add glasses", frames=clip(2, seed=60))["job"]
        c.wait(done, timeout=30)
        failed = c.preview("add glasses", frame=5, frames=clip(2, seed=61))["job"]
        c.wait(failed, timeout=30)
        c.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "ipfacediff.tests.engine"]
    mine = [line for line in lines if done in line]
    assert mine[0] == f"job {done} arrived: edit of 2 inline frame(s), prompt 'add glasses'; queue position 1"
    assert mine[1] == f"job {done} started: 2 frame(s)"
    assert re.fullmatch(rf"job {done} DONE in \d+\.\d s, 2 frame\(s\)", mine[-1]), mine
    end = [r for r in caplog.records if failed in r.getMessage()][-1]
    assert end.levelno == logging.WARNING
    assert re.fullmatch(rf"job {failed} FAILED after \d+\.\d s, 2 frame\(s\) \[user_error\]: preview frame 5 is "
                        r"outside the clip of 2 frame\(s\)\.", end.getMessage()), end.getMessage()
    assert lines[-1] == "shut down; 0 queued job(s) kept for the next start"


def test_log_level_warning_keeps_failures_and_the_lifecycle_only(tmp_path):
    stream = io.StringIO()
    logger = configure("ipfacediff.tests.levels", "warning", tmp_path / "serve.log")
    logger.handlers[0].setStream(stream)
    log, job = JobLog(logger), SimpleNamespace(id="j2", kind="edit", state="cancelled", code="cancelled",
                                               error="the job was cancelled while running.", started=1.0,
                                               finished=3.5, request={"prompt": "x", "frames": {"count": 3}})
    log.arrived(job, 1)
    log.started(job, 3)
    log.progress(job, "edit", 0.5, 1.0)
    log.ended(job, 3)
    log.lifecycle("ready on tcp://127.0.0.1:1")
    expected = ["job j2 CANCELLED after 2.5 s, 3 frame(s) [cancelled]: the job was cancelled while running.",
                "ready on tcp://127.0.0.1:1"]
    assert stream.getvalue().splitlines() == [f"ipfacediff engine: {line}" for line in expected]
    in_file = (tmp_path / "serve.log").read_text().splitlines()
    assert [line.split(" ", 3)[2:] for line in in_file] == [["WARNING", line] for line in expected]


def test_serve_writes_the_job_log_to_its_log_file_and_says_it_shut_down(tmp_path):
    log_file = tmp_path / "serve.log"
    engine = EngineProcess(tmp_path / "state", ["--log-file", str(log_file), "--no-fsync"]).start()
    try:
        with engine.client() as c:
            job = c.submit("add glasses", frames=clip(4, seed=62), settings={"steps": 3, "face_mode": "full"})["job"]
            c.wait(job, timeout=120)
    finally:
        assert engine.shutdown() == 0
    lines = [line.split(" ", 3)[3] for line in log_file.read_text().splitlines()]
    assert lines[0].startswith("ready on ")
    assert f"job {job} started: 4 frame(s)" in lines
    tenths = [int(m.group(1)) for line in lines if (m := re.fullmatch(rf"job {job} (\d+)% \(\w+, ETA .*\)", line))]
    assert len(tenths) >= 4 and tenths == sorted(set(tenths)), lines
    assert any(re.fullmatch(rf"job {job} DONE in \d+\.\d s, 4 frame\(s\)", line) for line in lines), lines
    assert lines[-1] == "shut down; 0 queued job(s) kept for the next start"


def test_log_level_debug_adds_each_request_and_each_error_reply_naming_the_client(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="ipfacediff.tests.engine")
    with InProcess(tmp_path / "state") as eng:
        c = eng.client()  # HELLO
        assert c.release("nope") == 0  # the engine answers unknown_job, which the client takes as released
        c.submit("add glasses", frames=clip(1, seed=63), job="j-debug")
        with pytest.raises(EngineError, match="already used"):  # refused on the I/O thread
            c.submit("add a hat", frames=clip(1, seed=63), job="j-debug")
        c.close()
    debug = [r.getMessage() for r in caplog.records
             if r.name == "ipfacediff.tests.engine" and r.levelno == logging.DEBUG]
    assert re.fullmatch(r"request HELLO id '?\w+'? from client [0-9a-f]+", debug[0]), debug
    client = debug[0].rsplit(" ", 1)[1]
    assert re.fullmatch(rf"request RELEASE id '?\w+'? job nope from client {client}", debug[1]), debug
    assert re.fullmatch(rf"error reply to client {client} \(re '?\w+'?\) \[unknown_job\]: no job 'nope' is known "
                        r"to this engine\.", debug[2]), debug
    assert re.fullmatch(rf"request SUBMIT id '?\w+'? job j-debug from client {client}", debug[3]), debug
    assert re.fullmatch(rf"request SUBMIT id '?\w+'? job j-debug from client {client}", debug[4]), debug
    assert re.fullmatch(rf"error reply to client {client} \(re '?\w+'?\) \[conflict\]: job id 'j-debug' is "
                        r"already used by a different request; choose a new id\.", debug[5]), debug
    assert len(debug) == 6
