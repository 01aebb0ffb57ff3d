"""Hostile and broken files dropped into one running `asrd run` (an unprivileged user, tiny models):
each gets a specific reason beside it, a transcript, or one documented skip event; the daemon lives
on and the good recordings among them are transcribed. One daemon for the module: each start pays
seconds of funasr import, and sharing it is the point (one bad file must not affect the others).
"""

from __future__ import annotations

import json
import os
import shutil
import unicodedata
from pathlib import Path

import pytest

from asrd.error_record import error_record_path
from asrd.ledger import Ledger
from tests.support import hostile
from tests.support.daemon import DaemonRun
from tests.support.recordings import distinct_wav
from tests.support.unprivileged import unprivileged

MAX_BYTES = 4_000_000  # limits.max_bytes for this daemon; the recordings below are far smaller

# name -> (maker, words the error record's reason must hold)
BROKEN = {
    "empty.wav": (hostile.empty, "empty file (0 bytes)"),
    "notes.wav": (hostile.text, "not audio: the file contains text"),
    "cut.wav": (lambda p: hostile.truncated(p, "wav"), "truncated: header promises 14.1 s, file holds"),
    "cut.mp3": (lambda p: hostile.truncated(p, "mp3"), "truncated: header promises 14.1 s, file holds"),
    "cut.m4a": (lambda p: hostile.truncated(p, "m4a"), "truncated: its 'mdat' box promises"),
    "film.mp4": (hostile.video_only, "no audio stream (video only)"),
    "bomb.wav": (hostile.hours_at_one_hertz, "too long: its header says 6.11 h, over limits.max_duration_s (6 h)"),
    "claims 2 GB.wav": (hostile.claims_gigabytes, "truncated: header promises 67108.9 s, file holds 1.0 s"),
    "big.wav": (lambda p: hostile.sparse_wav(p, MAX_BYTES + 1),
                f"too large: {MAX_BYTES + 1} bytes, over limits.max_bytes ({MAX_BYTES})"),
    "lying atom.m4a": (hostile.m4a_with_lying_atom, "truncated: its 'udta' box promises"),
    "L" * 246 + ".wav": (lambda p: hostile.text(p, "names"), "not audio"),  # its record's name must be shortened to fit
}
# name -> maker of a recording that must be transcribed (3 utterances unless silent)
GOOD = {
    "good one.wav": None,
    "sub/good two.wav": None,
    "line\nbreak 'single' \"double\" $(touch pwned) `id`; & |.wav": None,
    unicodedata.normalize("NFD", "Café Ünïcode.wav"): None,
    "clash.wav": None,  # the user's own clash.txt sits beside it
    "huge tag.mp3": hostile.huge_id3,
    "really an mp3.m4a": hostile.mp3_named,
    "garbage atom.m4a": hostile.m4a_with_garbage_atom,
}
NFD_COPY = unicodedata.normalize("NFD", "Kopie von Ünïcode.wav")  # a byte-identical copy of "good one.wav"
SKIPPED = {"pipe.wav": "a named pipe (FIFO)", "socket.wav": "a socket", "folder.wav": "a folder, not a recording",
           "linked folder": "a link to a folder: not followed", "loop": "a link to a folder: not followed"}


@pytest.fixture(scope="module")
def hostile_run(speech3, tiny_models):
    """The daemon, running as an unprivileged user, with every case dropped in; stopped at the end."""
    user = unprivileged(readable=sorted({Path(p).parent for p in tiny_models.values()}))
    daemon = DaemonRun(user.home, user=user, engine={"max_attempts": 1}, limits={"max_bytes": MAX_BYTES})
    inbox, outside = daemon.inbox, user.home / "elsewhere"
    clip = speech3[0] / "speech3.wav"
    for name, (make, _) in BROKEN.items():
        make(inbox / name)
    for name, make in GOOD.items():
        make(inbox / name) if make else distinct_wav(clip, inbox / name)
    (inbox / "clash.txt").write_text("my own notes\n")
    shutil.copy(inbox / "good one.wav", inbox / NFD_COPY)
    hostile.silence(inbox / "silence.wav")
    hostile.fifo(inbox / "pipe.wav")
    sock = hostile.unix_socket(inbox / "socket.wav")
    (inbox / "folder.wav").mkdir()
    target = distinct_wav(clip, outside / "target.wav")
    (inbox / "link.wav").symlink_to(target)
    distinct_wav(clip, outside / "folder" / "behind a folder link.wav")
    (inbox / "linked folder").symlink_to(outside / "folder", target_is_directory=True)
    (inbox / "loop").symlink_to(inbox, target_is_directory=True)
    user.own(inbox, outside)  # as if the user had put them there; links are not followed
    unreadable = distinct_wav(clip, inbox / "unreadable.wav")
    os.chmod(unreadable, 0)
    assert user.cannot_read(unreadable)
    daemon.start()
    try:
        yield daemon, outside
        assert daemon.proc.poll() is None, "the daemon died"
        daemon.stop()
    finally:
        sock.close()
        daemon.__exit__()
        shutil.rmtree(user.home, ignore_errors=True)


@pytest.fixture(scope="module")
def answered(hostile_run):
    """Waits until every broken file has its record and every good one its transcript."""
    daemon, outside = hostile_run
    inbox = daemon.inbox
    expected = [error_record_path(inbox / name) for name in BROKEN]
    expected += [(inbox / name).with_suffix(".txt") for name in [*GOOD, "silence.wav", "link.wav", NFD_COPY]
                 if name != "clash.wav"]
    expected.append(inbox / "clash.wav.txt")
    try:
        daemon.wait_until(lambda: all(p.exists() for p in expected), timeout=150)
    except AssertionError as exc:
        missing = [str(p.relative_to(inbox)) for p in expected if not p.exists()]
        said = [(e["event"], e.get("file"), e.get("reason")) for e in daemon.events()
                if e["event"] in ("job.failed", "job.waiting", "job.done", "file.skipped", "daemon.error")]
        raise AssertionError(f"no answer for {missing}; {said}") from exc
    daemon.wait_until(lambda: all(daemon.count("file.skipped", file=str(inbox / n)) for n in SKIPPED), timeout=30)
    return daemon, outside


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_file_gets_its_reason_beside_it(answered, name):
    daemon, _ = answered
    path = daemon.inbox / name
    record = json.loads(error_record_path(path).read_text())
    assert BROKEN[name][1] in record["reason"], record
    assert record["file"] == str(path) and record["attempts"] == 1
    assert Ledger(daemon.root / "state").by_path(path).state == "failed"


@pytest.mark.parametrize("name", sorted(GOOD))
def test_a_good_recording_among_them_is_transcribed(answered, name):
    daemon, _ = answered
    path = daemon.inbox / name
    base = path.name if name == "clash.wav" else path.stem
    doc = json.loads(path.with_name(base + ".json").read_text())
    assert doc["source"]["path"] == str(path) and len(doc["segments"]) == 3
    assert not error_record_path(path).exists()
    assert not any(p.exists() for p in (Path("pwned"), daemon.root / "pwned", path.parent / "pwned"))


def test_a_copy_under_an_nfd_name_gets_its_own_transcripts_from_the_one_transcription(answered):
    daemon, _ = answered
    copy = daemon.inbox / NFD_COPY
    doc = json.loads(copy.with_suffix(".json").read_text())
    assert doc["source"]["path"] == str(copy) and len(doc["segments"]) == 3
    assert daemon.count("copy.done") == 1 and daemon.count("job.started", file=str(copy)) == 0


def test_the_users_own_file_with_the_transcripts_name_is_untouched(answered):
    daemon, _ = answered
    assert (daemon.inbox / "clash.txt").read_text() == "my own notes\n"
    assert sorted(p.name for p in daemon.inbox.glob("clash.*")) == [
        "clash.txt", "clash.wav", "clash.wav.json", "clash.wav.srt", "clash.wav.txt"]


def test_silence_is_an_empty_transcript_not_an_error(answered):
    daemon, _ = answered
    silence = daemon.inbox / "silence.wav"
    doc = json.loads(silence.with_suffix(".json").read_text())
    assert doc["segments"] == [] and doc["text"] == "" and doc["duration_s"] == pytest.approx(5.0)
    assert silence.with_suffix(".txt").read_text().strip() == ""
    assert not error_record_path(silence).exists()


def test_a_link_to_a_recording_is_transcribed_beside_the_link_not_its_target(answered):
    daemon, outside = answered
    link = daemon.inbox / "link.wav"
    doc = json.loads(link.with_suffix(".json").read_text())
    assert doc["source"]["path"] == str(link) and len(doc["segments"]) == 3
    assert sorted(p.name for p in outside.iterdir()) == ["folder", "target.wav"]  # nothing beside the target


def test_links_to_folders_are_not_followed(answered):
    daemon, outside = answered
    assert sorted(p.name for p in (outside / "folder").iterdir()) == ["behind a folder link.wav"]
    assert not any("behind a folder link" in str(e.get("file")) for e in daemon.events() if e["event"] != "file.skipped")
    assert not any("/loop/" in str(e.get("file")) for e in daemon.events())


@pytest.mark.parametrize("name", sorted(SKIPPED))
def test_what_is_not_a_file_is_skipped_with_one_event_and_never_opened(answered, name):
    daemon, _ = answered
    path = daemon.inbox / name
    [skipped] = [e for e in daemon.events() if e["event"] == "file.skipped" and e["file"] == str(path)]
    assert SKIPPED[name] in skipped["reason"]
    assert daemon.count("job.queued", file=str(path)) == 0 and daemon.count("file.unreadable", file=str(path)) == 0
    assert not error_record_path(path).exists() and Ledger(daemon.root / "state").by_path(path) is None


def test_no_job_ran_twice_and_nothing_crashed(answered):
    daemon, _ = answered
    started = [e["file"] for e in daemon.events() if e["event"] == "job.started"]
    assert len(started) == len(set(started)) == len(BROKEN) + len(GOOD) + 2  # + silence, the link
    assert daemon.count("engine.crashed") == 0 and daemon.count("daemon.error") == 0
    assert daemon.count("job.error") == 0


def test_an_unreadable_recording_waits_and_is_transcribed_once_readable(answered):
    """Last: it changes the inbox. The job waits (no failure, no record), then runs."""
    daemon, _ = answered
    unreadable = daemon.inbox / "unreadable.wav"
    assert daemon.count("file.unreadable", file=str(unreadable)) >= 1
    assert Ledger(daemon.root / "state").by_path(unreadable) is None and not error_record_path(unreadable).exists()
    os.chmod(unreadable, 0o644)
    daemon.wait_until(lambda: unreadable.with_suffix(".txt").exists(), timeout=60)
    assert Ledger(daemon.root / "state").by_path(unreadable).state == "done"
