"""The real Service in this process (editor double): path outputs keep existing frames, every
file read is confined and regular, settings naming files are confined, and malformed
messages and settings get their own codes (never `internal`), with `re` when the id is readable."""

from __future__ import annotations

import os
import time

import msgpack
import pytest

from engine.io import write_frames
from server import protocol as P
from server.client import EngineError
from server.security import MediaRoots
from serverkit import InProcess, clip


@pytest.fixture
def media(tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    return root


def test_path_output_keeps_the_frames_already_in_the_folder(tmp_path, media):
    write_frames(clip(4, seed=1, size=16), media / "shot", start=0)
    out = media / "chunks"
    with InProcess(tmp_path / "state", media_roots=[str(media)]) as eng, eng.client() as c:
        for start in (0, 2):  # two chunks of one shot rendered into one folder
            acc = c.submit("x", input=str(media / "shot"), frame_range=(start, start + 1),
                           output={"mode": "path", "dir": str(out)})
            assert c.wait(acc["job"], timeout=30)["state"] == "done"
        assert sorted(p.name for p in out.glob("frame_*")) == [f"frame_{i:06d}.png" for i in range(4)]
        again = c.submit("x", input=str(media / "shot"), frame_range=(0, 1), output={"mode": "path", "dir": str(out)})
        info = c.wait(again["job"], timeout=30)
        assert info["state"] == "failed" and info["code"] == "user_error" and "overwrite" in info["error"]
        forced = c.submit("x", input=str(media / "shot"), frame_range=(0, 1),
                          output={"mode": "path", "dir": str(out), "overwrite": True})
        assert c.wait(forced["job"], timeout=30)["state"] == "done"
        assert len(list(out.glob("frame_*"))) == 4
        with pytest.raises(EngineError) as err:
            c.submit("x", input=str(media / "shot"), output={"mode": "path", "dir": str(out), "overwrite": "yes"})
        assert err.value.code == "bad_field"


def test_a_frame_symlinked_outside_the_media_root_is_refused(tmp_path, media):
    outside = tmp_path / "outside"
    write_frames(clip(1, seed=2, size=16), outside, start=0)
    write_frames(clip(2, seed=3, size=16), media / "shot", start=1)
    (media / "shot" / "frame_000000.png").symlink_to(outside / "frame_000000.png")
    roots = MediaRoots([media])
    with pytest.raises(P.ProtocolError) as err:
        roots.resolve_input(str(media / "shot"))
    assert err.value.code == "path_refused" and "frame_000000.png links outside" in err.value.message
    with pytest.raises(P.ProtocolError):
        roots.resolve_input(str(media / "shot" / "frame_%06d.png"))
    with InProcess(tmp_path / "state", media_roots=[str(media)]) as eng, eng.client() as c:
        with pytest.raises(EngineError) as err:
            c.submit("x", input=str(media / "shot"))
        assert err.value.code == "path_refused"


def test_a_fifo_in_the_media_root_is_refused_without_blocking(tmp_path, media):
    os.mkfifo(media / "x.png")
    (media / "shot").mkdir()
    os.mkfifo(media / "shot" / "frame_000001.png")
    with InProcess(tmp_path / "state", media_roots=[str(media)]) as eng, eng.client(timeout=5) as c:
        for path in (media / "x.png", media / "shot"):
            t0 = time.monotonic()
            with pytest.raises(EngineError) as err:
                c.submit("x", input=str(path))
            assert err.value.code == "path_refused" and "not a regular file" in err.value.message
            assert time.monotonic() - t0 < 5
        assert c.heartbeat()["worker"] == "alive"


@pytest.mark.parametrize("settings, code", [
    ({"face_reference": 5}, "bad_settings"), ({"face_models": ["/etc"]}, "bad_settings"),
    ({"face_reference": "/etc/passwd"}, "path_refused"), ({"face_models": "/etc"}, "path_refused"),
    ({"keyframes": ["x"]}, "bad_settings"), ({"keyframes": [float("nan")]}, "bad_settings"),
    ({"keyframes": [float("inf")]}, "bad_settings"), ({"guidance_scale": float("inf")}, "bad_settings"),
    ({"guidance_scale": 1e308}, "bad_settings"), ({"seed": "abc"}, "bad_settings"),
    ({"device": "meta"}, "bad_settings"), ({"dtype": "float64"}, "bad_settings"),
    ({"negative_prompt": None}, "bad_settings"), ({"steps": 1.5}, "bad_settings"),
])
def test_settings_are_checked_and_files_they_name_confined(tmp_path, media, settings, code):
    with InProcess(tmp_path / "state", media_roots=[str(media)]) as eng, eng.client() as c:
        with pytest.raises(EngineError) as err:
            c.submit("x", frames=clip(1, size=8), settings=settings)
        assert err.value.code == code
        if code == "bad_settings":
            assert err.value.message.startswith(next(iter(settings)) + " ")


def raw(header_bytes: bytes, version: bytes = b"IPFD1") -> list[bytes]:
    return [version, header_bytes]


@pytest.mark.parametrize("parts, code, re_", [
    (raw(msgpack.packb({"type": ["LIST"], "id": 5})), "unknown_type", 5),
    (raw(msgpack.packb({"type": {"a": 1}, "id": "x"})), "unknown_type", "x"),
    (raw(msgpack.packb({1: 2, "type": "LIST", "id": 6}, strict_types=False)), "bad_message", 6),
    (raw(msgpack.packb({"type": "LIST", "id": 7}), b"IPFD01"), "bad_version", 7),
    (raw(msgpack.packb({"type": "LIST", "id": 8}), b"IPFD+1"), "bad_version", 8),
    (raw(msgpack.packb({"type": "HELLO", "id": 9, "versions": "1"})), "bad_field", 9),
])
def test_malformed_headers_get_their_own_code_and_re(parts, code, re_):
    with pytest.raises(P.ProtocolError) as err:
        P.unpack(parts)
    assert (err.value.code, err.value.re) == (code, re_)
    assert "valid msgpack" not in err.value.message


def test_hello_with_bad_versions_says_what_is_expected():
    with pytest.raises(P.ProtocolError) as err:
        P.unpack(P.pack({"type": "HELLO", "id": 1, "versions": "1"}))
    assert "list of 1-16 protocol versions" in err.value.message and "[1]" in err.value.message
