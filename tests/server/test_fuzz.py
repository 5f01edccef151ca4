"""Fuzzing: malformed, truncated, oversized, wrong-typed and out-of-order messages are each
answered with a proper reply or an ERROR whose code names the client's mistake; `internal`
(a server bug) fails the test. 10,000 seeded messages of 21 kinds against the real Service
in this process (replies checked one by one, in order), and Hypothesis against the real engine
while a real job runs to completion (resident memory does not grow between two rounds)."""

from __future__ import annotations

import math
import os
import random
import time

import msgpack
import pytest
import zmq
from hypothesis import HealthCheck, given, settings, strategies as st

from engine.settings import documented_fields
from server import protocol as P
from serverkit import InProcess, clip

EXAMPLES = 500  # per round; ~3 messages each -> ~3,000 messages in the two rounds

ints = st.integers(-(2 ** 63), 2 ** 64 - 1)
leaves = st.none() | st.booleans() | ints | st.floats() | st.text(max_size=12) | st.binary(max_size=12)
values = st.recursive(leaves, lambda ch: st.lists(ch, max_size=4) | st.dictionaries(st.text(max_size=8), ch, max_size=4),
                      max_leaves=10)
field_names = st.sampled_from(sorted({f for spec in P.REQUESTS.values() for f in spec} | {"type", "id"}))
types = st.sampled_from([*P.REQUESTS, "ERROR", "RESULT", "", "submit"])
job_ids = st.text(alphabet="abcdefghij0123456789-_.:", min_size=1, max_size=20).filter(lambda s: s[0].isalnum())


def packed(header) -> bytes:
    return msgpack.packb(header, use_bin_type=True)


@st.composite
def typed_header(draw):
    header = draw(st.dictionaries(field_names, values, max_size=6))
    header["type"] = draw(types)
    if draw(st.booleans()):
        header["id"] = draw(st.integers(0, 1000))
    return [P.version_frame(), packed(header)]


@st.composite
def truncated(draw):
    raw = packed({"type": "SUBMIT", "id": 7, "job": "t", "prompt": "x" * draw(st.integers(0, 40)),
                  "frames": {"dtype": "uint8", "shape": [8, 8, 3], "count": 1}})
    return [P.version_frame(), raw[: draw(st.integers(0, len(raw) - 1))]]


@st.composite
def frames_mismatch(draw):
    count = draw(st.integers(1, 4))
    desc = {"dtype": draw(st.sampled_from(list(P.DTYPES))), "shape": [8, 8, draw(st.sampled_from([3, 4]))],
            "count": count}
    parts = draw(st.lists(st.binary(max_size=300), min_size=0, max_size=5))
    header = {"type": "SUBMIT", "id": 9, "job": "fuzz-frames", "prompt": "x", "frames": desc}
    return [P.version_frame(), packed(header), *parts]


@st.composite
def oversized(draw):
    if draw(st.booleans()):
        return [P.version_frame(), packed({"type": "HEARTBEAT", "id": 1}), *([b""] * draw(st.integers(63, 90)))]
    return [P.version_frame(), packed({"type": "HEARTBEAT", "id": 2}), *([b"\0" * 800_000] * 3)]


@st.composite
def out_of_order(draw):
    kind = draw(st.sampled_from(["RESULT", "CANCEL", "RELEASE", "STATUS"]))
    return [P.version_frame(), packed({"type": kind, "id": 3, "job": "fuzz-" + draw(job_ids)})]


messages = st.one_of(
    st.lists(st.binary(max_size=40), min_size=1, max_size=4),
    st.tuples(st.binary(max_size=8).filter(lambda b: b != P.version_frame()), st.just(packed({"type": "LIST", "id": 1})))
    .map(list),
    st.builds(lambda v: [P.version_frame(), packed(v)], values),
    typed_header(), truncated(), frames_mismatch(), oversized(), out_of_order(),
)


def answer(sock: zmq.Socket) -> dict:
    """The reply to the last message (skipping heartbeats); bounded wait."""
    for _ in range(50):
        assert sock.poll(5000), "the engine did not answer"
        msg = P.unpack(sock.recv_multipart(), P.Limits(), request=False)
        if "re" in msg.header:
            return msg.header
    raise AssertionError("only events, no reply")


@pytest.fixture
def fuzz_socket(engine):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(engine.address)
    yield sock
    sock.close()


def fuzz_round(sock: zmq.Socket, tally: dict) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(messages, min_size=1, max_size=5))
    def run(batch):
        for parts in batch:
            sock.send_multipart(parts)
            reply = answer(sock)
            tally[reply["type"]] = tally.get(reply["type"], 0) + 1
            if reply["type"] == "ERROR":
                assert reply["code"] in P.ERROR_CODES and reply["code"] != "internal", reply
                assert reply["message"]

    run()


def test_fuzz_answers_everything_while_serving_a_real_job(engine, client, fuzz_socket):
    real = client.submit("add glasses", frames=clip(4, seed=30), settings={"steps": 20, "face_mode": "full"})
    tally: dict = {}
    fuzz_round(fuzz_socket, tally)  # round 1 (also warms up allocator pools)
    assert client.wait(real["job"], timeout=300)["state"] == "done"
    rss_before = engine.rss()
    second = client.submit("add glasses", frames=clip(4, seed=31), settings={"steps": 20, "face_mode": "full"})
    fuzz_round(fuzz_socket, tally)
    assert client.wait(second["job"], timeout=300)["state"] == "done"
    rss_after = engine.rss()
    assert sum(tally.values()) >= 2000 and tally["ERROR"] > 1000
    assert client.result(second["job"]).frames
    assert not [j for j in client.list()["jobs"] if j["id"].startswith("fuzz")]
    print("fuzz tally", tally, "rss delta MiB", (rss_after - rss_before) / 2 ** 20)
    assert rss_after - rss_before < 64 * 2 ** 20, f"RSS grew by {(rss_after - rss_before) / 2 ** 20:.1f} MiB"


# --- 10,000 seeded messages of 21 kinds, in process ---------------------------------------------

SETTING_NAMES = [name for name, _, _ in documented_fields()]
ODD = [None, True, False, -1, 0, 1.5, math.nan, math.inf, -math.inf, 1e308, 2 ** 63, -(2 ** 63), 2 ** 64 - 1, "",
       "x" * 70, "../x", "/etc/passwd", "a\x00b", b"bin", [], [1, "x"], {}, {"a": [None]}, [[[[[]]]]]]


def odd(rng: random.Random):
    return rng.choice(ODD)


def header(rng: random.Random, kind: str, **fields) -> dict:
    return {"type": kind, "id": rng.randrange(2 ** 31), **fields}


def msg(h, *buffers, version: bytes = b"IPFD1") -> list[bytes]:
    return [version, msgpack.packb(h, use_bin_type=True, strict_types=False), *buffers]


def submit(rng: random.Random, **fields) -> dict:
    return header(rng, rng.choice(["SUBMIT", "PREVIEW"]), job=f"fz{rng.randrange(10 ** 9)}", prompt="x", **fields)


KINDS = {
    "random_parts": lambda r, m: [r.randbytes(r.randrange(40)) for _ in range(r.randrange(1, 4))],
    "bad_version_frame": lambda r, m: msg(header(r, "LIST"), version=r.choice(
        [b"", b"IPFD", b"IPFD0", b"IPFD01", b"IPFD+1", b"IPFD-1", b"IPFD 1", b"IPFD99999", b"ipfd1", b"HTTP/1.1"])),
    "unsupported_version": lambda r, m: msg(header(r, "LIST"), version=b"IPFD" + str(r.randrange(2, 999)).encode()),
    "not_a_map": lambda r, m: msg(r.choice([[1, 2], "LIST", 5, None, 1.5, b"x"])),
    "not_msgpack": lambda r, m: [b"IPFD1", r.choice([b"\xc1", b"\x81", b"\x92\x01", b"\xdc\xff\xff"]) + r.randbytes(3)],
    "truncated": lambda r, m: [b"IPFD1", msgpack.packb(submit(r, frames={"dtype": "uint8", "shape": [8, 8, 3],
                                                                       "count": 1}))[:r.randrange(1, 40)]],
    "type_not_string": lambda r, m: msg({"type": odd(r), "id": r.randrange(100)}),
    "unknown_type": lambda r, m: msg(header(r, r.choice(["", "submit", "ERROR", "RESULTS", "x" * 20]))),
    "non_string_keys": lambda r, m: msg({**header(r, "LIST"), r.choice([1, 2.5, None, True]): 1}),
    "bad_id": lambda r, m: msg({"type": "LIST", "id": odd(r)}),
    "unknown_field": lambda r, m: msg(header(r, r.choice(list(P.REQUESTS)), **{"zz" + str(r.randrange(9)): 1})),
    "wrong_field_type": lambda r, m: msg(header(r, (k := r.choice([k for k in P.REQUESTS if P.REQUESTS[k]])),
                                             **{f: odd(r) for f in r.sample(sorted(P.REQUESTS[k]),
                                                                           1 + r.randrange(len(P.REQUESTS[k])))})),
    "bad_setting": lambda r, m: msg(submit(r, settings={r.choice(SETTING_NAMES): odd(r)},
                                        frames={"dtype": "uint8", "shape": [4, 4, 3], "count": 1}), b"\0" * 48),
    "unknown_setting": lambda r, m: msg(submit(r, settings={r.choice(["stepz", "", "x" * 40]): 1},
                                            frames={"dtype": "uint8", "shape": [4, 4, 3], "count": 1}), b"\0" * 48),
    "frames_mismatch": lambda r, m: msg(submit(r, frames={"dtype": r.choice(list(P.DTYPES)), "shape": [4, 4, 3],
                                                       "count": r.randrange(1, 4)}),
                                     *[r.randbytes(r.randrange(200)) for _ in range(r.randrange(5))]),
    "bad_frames_descriptor": lambda r, m: msg(submit(r, frames={"dtype": odd(r), "shape": odd(r), "count": odd(r)})),
    "bad_paths": lambda r, m: msg(submit(r, **r.choice([{"input": {"path": odd(r)}},
                                                     {"input": {"path": "/x", "range": odd(r)}},
                                                     {"input": {"path": "/x"}, "output": {"mode": "path",
                                                                                          "dir": odd(r)}},
                                                     {"input": {"path": r.choice(["rel", "/a/../b", "/etc"])}}]))),
    "paths_in_the_media_root": lambda r, m: msg(submit(r, input={"path": m + r.choice(
        ["/fifo.png", "/missing.png", "/shot/frame_%06d.png", "/shot/frame_%d.exr", "/shot/", "/link", "/shot/x\x00"])},
        output=r.choice([{"mode": "inline"}, {"mode": "path", "dir": m}, {"mode": "path", "dir": m + "/fifo.png"},
                         {"mode": "path", "dir": m + "/o", "video": m + "/fifo.png"}]))),
    "both_or_neither_input": lambda r, m: msg(submit(r, **r.choice([{}, {"input": {"path": "/x"},
                                                                       "frames": {"dtype": "uint8", "shape": [1, 1, 3],
                                                                                  "count": 1}}]))),
    "unknown_job": lambda r, m: msg(header(r, r.choice(["RESULT", "CANCEL", "RELEASE", "STATUS"]),
                                        job=f"nope{r.randrange(10 ** 6)}")),
    "bad_token_and_paging": lambda r, m: msg(r.choice([header(r, "SHUTDOWN", token="wrong"),
                                                    header(r, "RESULT", job="j", offset=odd(r)),
                                                    header(r, "RESULT", job="j", count=odd(r))])),
}


def sent_id(parts: list[bytes]):
    """The id the engine should echo in `re` (None when it cannot be read)."""
    if len(parts) < 2 or parts[0] != b"IPFD1":
        return "unknown"  # refused before the header: re is the id if the header happens to be readable
    try:
        h = msgpack.unpackb(parts[1], strict_map_key=False)
    except Exception:
        return None
    ok = isinstance(h, dict) and isinstance(h.get("id"), (int, str)) and not isinstance(h.get("id"), bool)
    return h["id"] if ok and (isinstance(h["id"], str) and 1 <= len(h["id"]) <= 64 or
                              isinstance(h["id"], int) and 0 <= h["id"] < 2 ** 63) else None


def test_ten_thousand_malformed_messages_are_answered_in_order_and_never_internal(tmp_path):
    rng = random.Random(11)
    tally: dict = {}
    t0 = time.monotonic()
    media = tmp_path / "media"  # a media root with an empty sequence folder, a FIFO and a link out
    (media / "shot").mkdir(parents=True)
    os.mkfifo(media / "fifo.png")
    (media / "link").symlink_to("/etc")
    with InProcess(tmp_path / "state", media_roots=[str(media)]) as eng:
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(eng.address)
        for _ in range(10_000 // 50):  # windows of 50 pipelined messages, well under the HWMs
            batch = [(kind, KINDS[kind](rng, str(media))) for kind in rng.choices(list(KINDS), k=50)]
            for _, parts in batch:
                sock.send_multipart(parts)
            for kind, parts in batch:
                reply = answer(sock)
                want = sent_id(parts)
                if want != "unknown":
                    assert reply["re"] == want, (kind, parts, reply)
                assert reply.get("code") != "internal", (kind, parts, reply)
                assert reply["type"] != "ERROR" or (reply["code"] in P.ERROR_CODES and reply["message"].endswith("."))
                tally[kind] = tally.get(kind, 0) + 1
        with eng.client() as c:
            assert c.heartbeat()["worker"] == "alive"
        sock.close()
    assert sum(tally.values()) == 10_000 and len(tally) >= 15, tally
    print(f"fuzzed 10,000 messages of {len(tally)} kinds in {time.monotonic() - t0:.1f} s")
