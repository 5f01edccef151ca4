"""Hypothesis fuzzing of the real engine: malformed, truncated, oversized, wrong-typed and
out-of-order messages are each answered (with ERROR or a proper reply) while a real job runs
to completion; resident memory does not grow between two equal fuzz rounds."""

from __future__ import annotations

import msgpack
import pytest
import zmq
from hypothesis import HealthCheck, given, settings, strategies as st

from server import protocol as P
from serverkit import clip

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
                assert reply["code"] in P.ERROR_CODES and reply["message"]

    run()


def test_fuzz_answers_everything_while_serving_a_real_job(engine, client, fuzz_socket):
    real = client.submit("add glasses", frames=clip(4, seed=30), settings={"steps": 20})
    tally: dict = {}
    fuzz_round(fuzz_socket, tally)  # round 1 (also warms up allocator pools)
    assert client.wait(real["job"], timeout=300)["state"] == "done"
    rss_before = engine.rss()
    second = client.submit("add glasses", frames=clip(4, seed=31), settings={"steps": 20})
    fuzz_round(fuzz_socket, tally)
    assert client.wait(second["job"], timeout=300)["state"] == "done"
    rss_after = engine.rss()
    assert sum(tally.values()) >= 2000 and tally["ERROR"] > 1000
    assert client.result(second["job"]).frames
    assert not [j for j in client.list()["jobs"] if j["id"].startswith("fuzz")]
    print("fuzz tally", tally, "rss delta MiB", (rss_after - rss_before) / 2 ** 20)
    assert rss_after - rss_before < 64 * 2 ** 20, f"RSS grew by {(rss_after - rss_before) / 2 ** 20:.1f} MiB"
