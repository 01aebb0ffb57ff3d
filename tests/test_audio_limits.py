"""Hostile input at the decoder: a recording cut off mid-copy is named truncated whatever the
container, a broken one is never blamed on permissions, and decoding stops at the length limit
even when the header hides the length (memory stays bounded)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from asrd.audio import AudioError, decode, probe
from tests.support import hostile

FIXTURES = Path(__file__).parent / "fixtures" / "audio"


@pytest.mark.parametrize("func", [decode, probe], ids=["decode", "probe"])
def test_an_m4a_cut_off_mid_copy_is_named_truncated(func, tmp_path):
    with pytest.raises(AudioError, match=r"truncated: its 'mdat' box promises 116337 bytes, the file holds 58994"):
        func(hostile.truncated(tmp_path / "cut.m4a", "m4a"))


def test_an_atom_claiming_more_than_the_file_holds_is_truncated(tmp_path):
    with pytest.raises(AudioError, match=r"truncated: its 'udta' box promises"):
        probe(hostile.m4a_with_lying_atom(tmp_path / "lying.m4a"))


def test_an_unknown_atom_after_the_index_is_skipped(tmp_path):
    assert decode(hostile.m4a_with_garbage_atom(tmp_path / "junk.m4a")).duration_s == pytest.approx(14.1, abs=0.05)


def test_packets_the_decoder_refuses_are_bad_data_not_a_permission_problem(tmp_path):
    """Seed 1 makes FFmpeg answer EPERM for most packets (offsets shifted by an inserted atom)."""
    data = (FIXTURES / "speech3.m4a").read_bytes()
    end = struct.unpack(">I", data[:4])[0]
    fill = np.random.default_rng(1).integers(0, 256, 100000, dtype=np.uint8).tobytes()
    path = tmp_path / "shifted.m4a"
    path.write_bytes(data[:end] + struct.pack(">I", 8 + len(fill)) + b"junk" + fill + data[end:])
    with pytest.raises(AudioError) as info:
        decode(path)
    assert info.value.reason.startswith("undecodable audio data (") and "permission" not in info.value.reason


@pytest.mark.parametrize("fmt", ["wav", "m4a"])
def test_decoding_stops_at_the_length_limit(fmt):
    with pytest.raises(AudioError, match=r"too long: more than limits.max_duration_s \(5 s\) of audio"):
        decode(FIXTURES / f"speech3.{fmt}", max_duration_s=5)
    assert decode(FIXTURES / f"speech3.{fmt}", max_duration_s=15).duration_s == pytest.approx(14.1, abs=0.05)


def test_a_tiny_file_claiming_hours_says_so_from_its_header(tmp_path):
    """22 KB at 1 Hz: 6.1 h, 1.4 GB once decoded. The engine refuses it from this probe."""
    bomb = hostile.hours_at_one_hertz(tmp_path / "bomb.wav")
    assert bomb.stat().st_size < 25_000 and probe(bomb).duration_s == 22000
