"""asrd's state lost while it was stopped (the state folder deleted, the ledger file corrupted): a
real `asrd run` takes finished recordings back from their outputs, transcribes nothing twice and
writes no `memo (2).txt`; an output its owner edited stays theirs."""

from __future__ import annotations

import shutil
from pathlib import Path

from asrd.ledger import Ledger
from asrd.manifest import Manifest
from tests.support.daemon import DaemonRun
from tests.support.recordings import distinct_wav

FORMATS = ["txt", "srt", "json"]


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.iterdir()) if p.is_file()}


def transcribed(tmp_path: Path, speech3, names: list[str]) -> DaemonRun:
    daemon = DaemonRun(tmp_path, outputs=FORMATS)
    daemon.inbox.mkdir(parents=True)
    for name in names:
        distinct_wav(speech3[0] / "speech3.wav", daemon.inbox / name)
    with daemon:
        daemon.wait_done(len(names))
        assert daemon.stop()[0] == 0
    daemon.log_file.rename(daemon.log_file.with_name("first-run.log"))
    return daemon


def test_a_deleted_state_folder_costs_no_transcription_and_no_second_outputs(tmp_path, tiny_models, speech3):
    first = transcribed(tmp_path, speech3, ["memo.wav", "talk.wav"])
    edited = first.inbox / "memo.txt"
    edited.write_text("my corrected transcript\n")
    before = snapshot(first.inbox)
    state = tmp_path / "state"
    shutil.rmtree(state)
    with DaemonRun(tmp_path, outputs=FORMATS) as daemon:
        recovered = daemon.wait_for(lambda e: e["event"] == "job.recovered", 60, n=2)
        daemon.wait_for(lambda e: e["event"] == "watcher.rescanned" or e["event"] == "inbox.watching", 30)
        assert daemon.count("job.started") == 0 and daemon.count("job.queued") == 0
        assert daemon.stop()[0] == 0
    assert snapshot(daemon.inbox) == before  # nothing rewritten, nothing added (no "memo (2).txt")
    memo = next(e for e in recovered if e["file"].endswith("memo.wav"))
    assert memo["edited"] == [str(edited)] and str(edited) not in memo["outputs"]
    jobs = Ledger(state).recent(10)
    assert sorted(j.state for j in jobs) == ["done", "done"] and all(j.audio_s for j in jobs)
    manifest = Manifest(state)
    assert manifest.entry(edited) is None  # the owner's now: never overwritten
    assert manifest.entry(daemon.inbox / "memo.srt") is not None and manifest.entry(daemon.inbox / "talk.txt")
    kept = sorted(p.stem for p in (state / "transcripts").glob("*.json"))  # later formats need no recompute
    assert kept == sorted(j.sha256 for j in jobs)


def test_a_corrupt_ledger_is_set_aside_and_rebuilt_from_the_outputs(tmp_path, tiny_models, speech3):
    first = transcribed(tmp_path, speech3, ["memo.wav"])
    before = snapshot(first.inbox)
    ledger_file = tmp_path / "state" / "ledger.sqlite3"
    for leftover in ("-wal", "-shm"):
        Path(f"{ledger_file}{leftover}").unlink(missing_ok=True)
    ledger_file.write_bytes(b"this is not a database\n" * 100)
    with DaemonRun(tmp_path, outputs=FORMATS) as daemon:
        [corrupt] = daemon.wait_for(lambda e: e["event"] == "state.corrupt", 60)
        daemon.wait_for(lambda e: e["event"] == "job.recovered", 60)
        assert daemon.count("job.started") == 0
        assert daemon.stop()[0] == 0
    aside = Path(corrupt["set_aside"])
    assert aside.read_bytes().startswith(b"this is not a database")  # kept, never deleted
    assert snapshot(daemon.inbox) == before
    assert [j.state for j in Ledger(tmp_path / "state").recent(10)] == ["done"]
