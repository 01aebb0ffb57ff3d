"""Hostile and broken recordings, made in the test from the committed clip (no large fixtures).

Each maker writes one file at `path` and returns it; the comment says what it is meant to break.
"""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

import numpy as np
import soundfile as sf

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "audio"


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _clip(fmt: str) -> bytes:
    return (FIXTURES / f"speech3.{fmt}").read_bytes()


def wav_header(rate: int, bits: int, channels: int, data_bytes: int) -> bytes:
    """A plain PCM RIFF/WAVE header whose data chunk claims `data_bytes`."""
    align = channels * bits // 8
    return (b"RIFF" + struct.pack("<I", (36 + data_bytes) & 0xFFFFFFFF) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * align, align, bits)
            + b"data" + struct.pack("<I", data_bytes))


def empty(path: Path) -> Path:
    return _write(path, b"")


def text(path: Path, topic: str = "the offsite") -> Path:
    """Meeting notes saved under a recording's name (`topic` makes each its own content)."""
    return _write(path, f"Agenda: budget, hiring, {topic}.\n".encode() * 40)


def truncated(path: Path, fmt: str) -> Path:
    """The first half of the clip: a copy cut off, the header promising the whole."""
    data = _clip(fmt)
    return _write(path, data[: len(data) // 2])


def video_only(path: Path) -> Path:
    """An mp4 with a video track and no audio at all."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def silence(path: Path, seconds: float = 5.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(seconds * 16000), np.int16), 16000, subtype="PCM_16")
    return path


def hours_at_one_hertz(path: Path, seconds: int = 22000) -> Path:
    """A decompression bomb: 22 KB of valid 8-bit PCM at 1 Hz, 6.1 h long; decoded to 16 kHz
    float32 it would be 1.4 GB."""
    return _write(path, wav_header(1, 8, 1, seconds) + b"\x80" * seconds)


def claims_gigabytes(path: Path) -> Path:
    """A wav header whose data chunk claims 2 GB, followed by 1 s of samples."""
    return _write(path, wav_header(16000, 16, 1, 0x7FFFFFF0) + b"\x00" * 32000)


def sparse_wav(path: Path, size: int) -> Path:
    """A valid silent wav of `size` bytes that takes no disk space (the zeros are a hole)."""
    _write(path, wav_header(16000, 16, 1, size - 44))
    os.truncate(path, size)
    return path


def huge_id3(path: Path, tag_bytes: int = 3_000_000) -> Path:
    """The mp3 clip behind a 3 MB ID3v2 tag (a PRIV frame of junk, as some taggers leave)."""
    body = bytes(range(256)) * (tag_bytes // 256)
    body = body.replace(b"\xff", b"\x00")  # no false frame syncs inside the tag
    frame = b"PRIV" + struct.pack(">I", len(body) + 6) + b"\x00\x00" + b"asrd\x00\x00" + body
    size = len(frame)
    synchsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    return _write(path, b"ID3\x03\x00\x00" + synchsafe + frame + _clip("mp3"))


def m4a_with_garbage_atom(path: Path) -> Path:
    """The m4a clip with an unknown 64 KB top-level atom at the end (players skip it)."""
    junk = bytes(range(256)) * 256
    return _write(path, _clip("m4a") + struct.pack(">I", 8 + len(junk)) + b"junk" + junk)


def m4a_with_lying_atom(path: Path) -> Path:
    """The m4a clip with a `udta` atom after `ftyp` whose size field claims 4 GB."""
    data = _clip("m4a")
    ftyp_end = struct.unpack(">I", data[:4])[0]
    bad = struct.pack(">I", 0xFFFFFF00) + b"udta" + b"\x00" * 64
    return _write(path, data[:ftyp_end] + bad + data[ftyp_end:])


def mp3_named(path: Path) -> Path:
    """The mp3 clip under another extension (`.m4a`): decoded by content."""
    return _write(path, _clip("mp3"))


def fifo(path: Path) -> Path:
    """A named pipe: opening it for reading would block until a writer comes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def unix_socket(path: Path) -> socket.socket:
    """A listening unix socket at `path`; the caller closes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(1)
    return sock
