"""Output names fit the filesystem (NAME_MAX bytes) whatever the recording is called, and an output
set that cannot be written completely leaves nothing half-written behind."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

import asrd.output as output
from asrd.hashing import sha256_bytes
from asrd.manifest import Manifest
from asrd.output import write_atomic, write_outputs
from tests.support.written import FMTS, listing, names, recording

CJK_STEM = "会" * 83 + "ab"  # 251 bytes: `<stem>.wav` is a legal 255-byte name, `<stem>.json` 256


def test_longest_legal_name_gets_outputs_with_shortened_names(tmp_path: Path) -> None:
    inbox, manifest = tmp_path / "inbox", Manifest(tmp_path / "state")
    source, t = recording(inbox / f"{CJK_STEM}.wav", b"audio")
    assert len(source.name.encode()) == 255
    paths = write_outputs(t, source, FMTS, manifest)
    assert [p.suffix for p in paths] == [".txt", ".srt", ".json"]
    bases = {p.name.rsplit(".", 1)[0] for p in paths}
    assert len(bases) == 1  # one set, one base
    (base,) = bases
    assert base.startswith("会" * 80) and base.endswith("…")
    assert all(len(p.name.encode()) <= 255 and p.is_file() for p in paths)
    assert write_outputs(t, source, FMTS, manifest) == paths  # a redo finds them again
    # the fallbacks still work, shortened too: the full-name base, then numbered ones
    for p in paths:
        p.write_text("the user's now")
    again = write_outputs(t, source, FMTS, manifest)
    assert again[0].name.endswith("….wav.txt") and len(again[0].name.encode()) <= 255
    for p in again:
        p.write_text("the user's now")
    numbered = write_outputs(t, source, ["txt"], manifest)
    assert numbered[0].name.endswith("… (2).txt") and len(numbered[0].name.encode()) <= 255


def test_temp_names_fit_beside_a_255_byte_target(tmp_path: Path) -> None:
    target = tmp_path / ("会" * 85)
    write_atomic(target, "x")
    assert target.read_text() == "x" and listing(tmp_path) == [target.name]


def _fail_on(monkeypatch, suffix: str, err: int) -> None:
    """Writing a temp file for a target ending in `suffix` fails with the real errno `err`."""
    real_open = os.open

    def failing_open(path, flags, mode=0o777, **kw):
        name = Path(path).name
        if output.is_temp_file(name) and f"{suffix}." in name:
            raise OSError(err, os.strerror(err), str(path))
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr(os, "open", failing_open)


def _fail_rename_on(monkeypatch, suffix: str, err: int) -> None:
    """Renaming a temp file into place over a target ending in `suffix` fails with the real errno `err`."""
    real_replace = output._replace

    def failing_replace(src, dst):
        if str(dst).endswith(suffix):
            raise OSError(err, os.strerror(err), str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(output, "_replace", failing_replace)


def test_a_set_that_fails_midway_removes_what_it_created(tmp_path: Path, monkeypatch) -> None:
    inbox, manifest = tmp_path / "inbox", Manifest(tmp_path / "state")
    source, t = recording(inbox / "memo.m4a", b"audio")
    _fail_on(monkeypatch, ".json", errno.ENOSPC)
    with pytest.raises(OSError) as caught:
        write_outputs(t, source, FMTS, manifest)
    assert caught.value.errno == errno.ENOSPC
    assert listing(inbox) == ["memo.m4a"]
    assert manifest.lookup(inbox / "memo.txt") is None and manifest.lookup(inbox / "memo.srt") is None


def test_a_redo_that_cannot_write_its_files_leaves_the_previous_outputs_as_they_were(tmp_path: Path,
                                                                                       monkeypatch) -> None:
    """Every file of a set is written (and flushed) before the first is renamed into place: a set
    whose third file cannot be written changes nothing beside the recording."""
    inbox, manifest = tmp_path / "inbox", Manifest(tmp_path / "state")
    source, t = recording(inbox / "memo.m4a", b"audio", "first words")
    first = write_outputs(t, source, ["txt", "json"], manifest)
    before = {name: (inbox / name).read_bytes() for name in ("memo.txt", "memo.json")}
    t.segments[0].text = "second words"
    _fail_on(monkeypatch, ".json", errno.EROFS)
    with pytest.raises(OSError):
        write_outputs(t, source, ["txt", "srt", "json"], manifest)
    monkeypatch.undo()
    assert listing(inbox) == ["memo.json", "memo.m4a", "memo.txt"]  # no temp file, no memo.srt
    assert {name: (inbox / name).read_bytes() for name in before} == before
    assert all(manifest.owns(p, source, content_sha256=t.source.sha256) for p in first)
    assert names(write_outputs(t, source, FMTS, manifest)) == ["memo.txt", "memo.srt", "memo.json"]


def test_a_failed_redo_keeps_the_previous_outputs_it_did_not_replace(tmp_path: Path, monkeypatch) -> None:
    inbox, manifest = tmp_path / "inbox", Manifest(tmp_path / "state")
    source, t = recording(inbox / "memo.m4a", b"audio", "first words")
    first = write_outputs(t, source, ["txt", "json"], manifest)
    old_json = (inbox / "memo.json").read_bytes()
    t.segments[0].text = "second words"
    _fail_rename_on(monkeypatch, ".json", errno.EROFS)
    with pytest.raises(OSError):
        write_outputs(t, source, ["txt", "srt", "json"], manifest)
    monkeypatch.undo()
    # memo.txt was replaced (it stays: the new render of the same recording), memo.srt was new (gone),
    # memo.json was not reached (the previous one, still asrd's); its temp file is gone too
    assert listing(inbox) == ["memo.json", "memo.m4a", "memo.txt"]
    assert "second words" in (inbox / "memo.txt").read_text()
    assert (inbox / "memo.json").read_bytes() == old_json
    assert all(manifest.owns(p, source, content_sha256=t.source.sha256) for p in first)
    row = manifest.entry(inbox / "memo.txt")  # the replaced file is recorded as what is there now
    assert (row.sha256, row.pending_sha256) == (sha256_bytes((inbox / "memo.txt").read_bytes()), None)
    assert names(write_outputs(t, source, FMTS, manifest)) == ["memo.txt", "memo.srt", "memo.json"]


def test_a_new_file_of_a_failed_set_that_cannot_be_removed_stays_known_as_asrds(tmp_path: Path, monkeypatch) -> None:
    """The set fails and the file it created cannot be removed (busy, no permission): it stays,
    recorded as asrd's, so the next attempt writes over it instead of choosing `memo (2)`."""
    inbox, manifest = tmp_path / "inbox", Manifest(tmp_path / "state")
    source, t = recording(inbox / "memo.m4a", b"audio")
    _fail_rename_on(monkeypatch, ".json", errno.ENOSPC)
    real_unlink = os.unlink

    def busy_unlink(path, *args, **kw):
        if Path(path).name == "memo.srt":
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(path))
        return real_unlink(path, *args, **kw)

    monkeypatch.setattr(output.os, "unlink", busy_unlink)
    with pytest.raises(OSError):
        write_outputs(t, source, FMTS, manifest)
    monkeypatch.undo()
    assert listing(inbox) == ["memo.m4a", "memo.srt"]  # memo.txt removed; memo.srt could not be
    row = manifest.entry(inbox / "memo.srt")
    assert row is not None and row.sha256 == sha256_bytes((inbox / "memo.srt").read_bytes())
    assert names(write_outputs(t, source, FMTS, manifest)) == ["memo.txt", "memo.srt", "memo.json"]


def test_a_cut_full_name_base_keeps_an_extension_of_up_to_16_bytes(tmp_path: Path) -> None:
    """The second name tried is the recording's full name; cut to fit, it keeps a real extension
    (`….m4a`) but not a long dotted tail that is really part of the name."""
    stem = "a" * 240
    kept, dropped = ".abcdefghijklmno", ".abcdefghijklmnop"  # 16 and 17 bytes
    assert (len(kept), len(dropped)) == (output.MAX_KEPT_EXTENSION, output.MAX_KEPT_EXTENSION + 1)
    second = [list(output.candidate_bases(tmp_path / (stem + ext), tmp_path))[1].name for ext in (kept, dropped)]
    assert second[0].endswith("…" + kept) and len(second[0].encode()) <= 255
    assert second[1].endswith("…") and dropped not in second[1]
