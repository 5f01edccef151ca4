"""`ipfacediff edit --engine` writes the same files as in-process; protocol, paths and cache units;
the client side imports no torch."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from server import protocol as P
from server.security import MediaRoots
from serverkit import ROOT, clip


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})


def test_edit_through_engine_matches_in_process(engine, tmp_path):
    from engine.io import write_frames

    write_frames(clip(3, seed=40), tmp_path / "in", start=7)
    common = ["--prompt", "add glasses", "--steps", "2", "--mode", "full", "--quiet", "--format", "png"]
    local = cli("edit", str(tmp_path / "in"), "--out", str(tmp_path / "local"), "--preset", "tiny", *common)
    remote = cli("edit", str(tmp_path / "in"), "--out", str(tmp_path / "remote"), "--engine", engine.address, *common)
    assert local.returncode == 0, local.stderr
    assert remote.returncode == 0, remote.stderr
    names = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "remote").iterdir())
    assert "frame_edit_000007.png" in names and "RANDOM_WEIGHTS.txt" in names
    for name in names:
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "remote" / name).read_bytes(), name


def test_client_side_imports_no_torch():
    code = "import sys, server.client, server.protocol; print(sorted({'torch','diffusers','cv2'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def test_pack_unpack_round_trip_without_copies():
    frames = clip(2, size=8, channels=4, dtype=np.float16)
    header = {"type": "SUBMIT", "id": 1, "job": "a", "prompt": "x", "frames": P.describe(frames)}
    msg = P.unpack(P.pack(header, P.as_buffers(frames)))
    P.check_frames(msg.header["frames"], msg.buffers, P.Limits())
    for got, sent in zip(P.to_arrays(msg.header["frames"], msg.buffers), frames):
        assert np.array_equal(got, sent)


@pytest.mark.parametrize("parts, code", [
    ([b"IPFD9", b"\x80"], "bad_version"),
    ([b"HTTP/1.1", b"\x80"], "bad_version"),
    ([b"IPFD1"], "bad_message"),
    ([b"IPFD1", b"\xc1"], "bad_message"),
    ([b"IPFD1", b"\x91\x01"], "bad_message"),
    ([b"IPFD1", P.pack({"type": "NOPE", "id": 1})[1]], "unknown_type"),
    ([b"IPFD1", P.pack({"type": "LIST"})[1]], "bad_field"),
    ([b"IPFD1", P.pack({"type": "LIST", "id": 1, "extra": 1})[1]], "bad_field"),
    ([b"IPFD1", P.pack({"type": "CANCEL", "id": 1, "job": "../x"})[1]], "bad_field"),
])
def test_malformed_messages_get_codes(parts, code):
    with pytest.raises(P.ProtocolError) as err:
        P.unpack(parts)
    assert err.value.code == code and err.value.message.endswith(".")


def test_frame_checks():
    desc = {"dtype": "uint8", "shape": [2, 2, 3], "count": 2}
    with pytest.raises(P.ProtocolError, match="announces 2"):
        P.check_frames(desc, [b"\0" * 12], P.Limits())
    with pytest.raises(P.ProtocolError, match="needs 12"):
        P.check_frames(desc, [b"\0" * 12, b"\0" * 11], P.Limits())
    with pytest.raises(P.ProtocolError, match="limit"):
        P.check_frames(desc, [b"\0" * 12] * 2, P.Limits(max_frames=1))


def test_local_endpoints():
    assert all(P.endpoint_is_local(a) for a in ["tcp://127.0.0.1:5555", "tcp://localhost:1", "tcp://[::1]:2",
                                                "ipc:///tmp/x", "tcp://127.0.0.1:*"])
    assert not any(P.endpoint_is_local(a) for a in ["tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://eth0:5555",
                                                    "tcp://10.0.0.1:5555", "tcp://127.0.0.1.evil.com:1"])


def test_media_roots(tmp_path):
    root = tmp_path / "root"
    (root / "shot").mkdir(parents=True)
    (root / "escape").symlink_to(tmp_path)
    roots = MediaRoots([root])
    assert roots.resolve(str(root / "shot" / "f_%04d.exr")) == root / "shot" / "f_%04d.exr"
    for bad in ["relative/x", f"{root}/../x", f"{root}/escape/x", "/etc/passwd", f"{root}/a\0b"]:
        with pytest.raises(P.ProtocolError):
            roots.resolve(bad)
    with pytest.raises(P.ProtocolError, match="not the root"):
        roots.resolve(str(root), for_output=True)
    with pytest.raises(P.ProtocolError, match="no --media-root"):
        MediaRoots([]).resolve(str(root))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float16, np.float32])
def test_with_alpha_interleaves_exactly(dtype):
    from server.worker import with_alpha

    rng = np.random.default_rng(3)
    rgba = (rng.random((5, 7, 4)) * (200 if np.dtype(dtype).kind == "u" else 1)).astype(dtype)
    rgba[0, 0] = np.array([np.nan, 1, 2, 3]).astype(dtype) if np.dtype(dtype).kind == "f" else rgba[0, 0]
    out = np.empty_like(rgba)
    assert with_alpha(rgba[..., :3], rgba[..., 3], out) is out
    assert np.array_equal(out.view(np.uint8), rgba.view(np.uint8))  # bit for bit, NaN included


def test_edit_through_engine_checks_outputs_before_asking_the_engine(tmp_path):
    from engine.io import write_frames
    from serverkit import free_port

    write_frames(clip(2, seed=41), tmp_path / "in", start=1)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "frame_edit_000001.png").write_bytes(b"earlier chunk")
    nobody = f"tcp://127.0.0.1:{free_port()}"  # no engine there: a check after connecting would hang, then fail
    out = cli("edit", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--engine", nobody,
              "--prompt", "add glasses", "--format", "png")
    assert out.returncode == 2 and "overwrite" in out.stderr and "Traceback" not in out.stderr
    assert (tmp_path / "out" / "frame_edit_000001.png").read_bytes() == b"earlier chunk"
    out = cli("edit", str(tmp_path / "in"), "--out", str(tmp_path / "o2"), "--engine", nobody, "--prompt", "x" * 1001)
    assert out.returncode == 2 and "1000" in out.stderr
