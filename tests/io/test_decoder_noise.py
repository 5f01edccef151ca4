"""Decoders' own console output (FFmpeg, OpenCV, libpng) stays off stderr; what matters ends
our one sentence (issue 15 item 12)."""

from __future__ import annotations

import struct
import zlib

import pytest

from engine.errors import UserError
from engine.io import probe, read_frames


def _png_with_a_broken_colour_profile(path):
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * 12 for _ in range(4))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
                     + chunk(b"iCCP", b"bad\x00\x00" + zlib.compress(b"junk")) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))
    return path


def test_a_corrupt_video_is_one_sentence_with_ffmpegs_reason_and_nothing_else_on_stderr(tmp_path, capfd):
    (tmp_path / "cut.mp4").write_bytes(b"not a video at all")
    with pytest.raises(UserError, match=r"could not be opened as a video.*\(the decoder said: moov atom not found\)"):
        probe(tmp_path / "cut.mp4")
    with pytest.raises(UserError, match="moov atom not found"):
        read_frames(tmp_path / "cut.mp4")
    assert capfd.readouterr().err == ""


def test_a_png_with_a_broken_colour_profile_reads_without_libpng_warnings(tmp_path, capfd):
    clip = read_frames(_png_with_a_broken_colour_profile(tmp_path / "frame.0001.png"))
    assert clip.frames[0].shape == (4, 4, 3) and (clip.frames[0] == 128).all()
    assert capfd.readouterr().err == ""
