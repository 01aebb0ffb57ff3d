"""Outputs belong to a recording's content: a new recording under an old name never overwrites the
old one's transcripts, and manifests of an older asrd keep working."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from asrd.hashing import sha256_file
from asrd.manifest import Manifest, path_key
from asrd.output import write_outputs
from tests.support.written import FMTS, names, recording


def test_new_recording_under_an_old_name_keeps_the_old_transcripts(tmp_path: Path) -> None:
    inbox, manifest = tmp_path / "inbox", Manifest(tmp_path / "state")
    zoom, a = recording(inbox / "ZOOM0001.wav", b"content A", "recording A")
    first = write_outputs(a, zoom, FMTS, manifest)
    assert names(first) == ["ZOOM0001.txt", "ZOOM0001.srt", "ZOOM0001.json"]
    (inbox / "day1").mkdir()
    zoom.rename(inbox / "day1" / "ZOOM0001.wav")
    zoom, b = recording(inbox / "ZOOM0001.wav", b"content B", "recording B")
    second = write_outputs(b, zoom, FMTS, manifest)
    assert names(second) == ["ZOOM0001.wav.txt", "ZOOM0001.wav.srt", "ZOOM0001.wav.json"]
    assert "recording A" in (inbox / "ZOOM0001.txt").read_text()
    assert "recording B" in (inbox / "ZOOM0001.wav.txt").read_text()
    assert write_outputs(b, zoom, FMTS, manifest) == second  # the same content still reuses its own


def test_rows_of_an_old_manifest_keep_the_path_rule_until_rewritten(tmp_path: Path) -> None:
    inbox, state = tmp_path / "inbox", tmp_path / "state"
    memo, a = recording(inbox / "memo.wav", b"content A")
    old_output = inbox / "memo.txt"
    old_output.write_text("written by an older asrd\n")
    state.mkdir()
    with sqlite3.connect(state / "outputs.sqlite3") as conn:  # the schema before content hashes
        conn.execute("CREATE TABLE outputs (path TEXT PRIMARY KEY, sha256 TEXT NOT NULL, "
                     "source TEXT NOT NULL, written_at REAL NOT NULL)")
        conn.execute("INSERT INTO outputs VALUES (?, ?, ?, 0)",
                     (path_key(old_output), sha256_file(old_output), path_key(memo)))
    conn.close()
    manifest = Manifest(state)
    assert manifest.owns(old_output, memo, content_sha256="f" * 64)  # no content known: path rule
    assert names(write_outputs(a, memo, ["txt"], manifest)) == ["memo.txt"]
    assert not manifest.owns(old_output, memo, content_sha256="f" * 64)  # now it is content A's
    assert manifest.owns(old_output, memo, content_sha256=a.source.sha256)


def test_an_abandoned_write_never_takes_over_another_recordings_row(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path / "state")
    out = tmp_path / "memo.txt"
    out.write_text("recording A's transcript")
    manifest.record(out, sha256_file(out), tmp_path / "memo.wav", content_sha256="a" * 64)
    manifest.intend([(out, "b" * 64)], tmp_path / "memo.wav", "c" * 64)  # raced: the file is A's
    manifest.abandon([(out, "b" * 64)])
    assert manifest.owns(out, tmp_path / "memo.wav", content_sha256="a" * 64)
