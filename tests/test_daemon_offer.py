"""The daemon's hand-over from the watcher to the ledger, in-process (no engine is started)."""

from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager

import yaml
from structlog.testing import capture_logs

import asrd.daemon as daemon_mod
from asrd.config import load_config
from asrd.daemon import Daemon
from asrd.engine.process import DONE, STOPPED, JobOutcome
from tests.support.configs import config_data, write_config
from tests.support.in_process import ends, hand_on, queued_memo, run_job, transcript_of


def _ready(daemon: Daemon, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = daemon.watcher.poll()
        if ready:
            return ready
        time.sleep(0.1)
    raise AssertionError("the watcher handed nothing on")


def test_a_file_that_could_not_be_read_once_is_offered_again_at_the_next_rescan(tmp_path, monkeypatch):
    config = load_config(write_config(tmp_path, watch={"settle_s": 0.1, "rescan_s": 1}))
    config.inbox.mkdir(parents=True)
    memo = config.inbox / "memo.wav"
    memo.write_bytes(b"RIFF" + bytes(2000))
    daemon = Daemon(config)
    real_hash = daemon_mod.sha256_file
    calls = []

    def flaky(path):  # one transient read error (a network volume hiccup, a sync client's lock)
        calls.append(path)
        if len(calls) == 1:
            raise OSError(5, "Input/output error", str(path))
        return real_hash(path)

    monkeypatch.setattr(daemon_mod, "sha256_file", flaky)
    daemon.watcher.start()
    try:
        [ready] = _ready(daemon)
        daemon._offer(ready)
        assert daemon.ledger.by_path(memo) is None
        [again] = _ready(daemon)  # the next rescan offers it again; before, it was hidden until a restart
        daemon._offer(again)
    finally:
        daemon.watcher.stop()
    assert daemon.ledger.by_path(memo).state == "queued"


def test_a_recording_seen_again_after_a_restart_is_not_read_again(tmp_path, monkeypatch):
    """Every start rescans the inbox: a recording whose size and mtime were hashed before is known by
    them, not read again (an inbox of long recordings would otherwise be read whole at each login)."""
    config = load_config(write_config(tmp_path, watch={"settle_s": 0.1}))
    config.inbox.mkdir(parents=True)
    memo = config.inbox / "memo.wav"
    memo.write_bytes(b"RIFF" + bytes(2000))
    real_hash, hashed = daemon_mod.sha256_file, []
    monkeypatch.setattr(daemon_mod, "sha256_file", lambda path: hashed.append(path) or real_hash(path))
    with capture_logs() as logs:
        for _ in range(2):  # a start, and the start after it
            daemon = Daemon(config)
            daemon.watcher.start()
            try:
                [ready] = _ready(daemon)
                daemon._offer(ready)
            finally:
                daemon.watcher.stop()
    assert hashed == [memo] and daemon.ledger.by_path(memo).state == "queued"
    assert [e["file"] for e in logs if e["event"] == "job.queued"] == [str(memo)]  # said once, when new


def test_a_job_claimed_by_another_asrd_between_look_and_claim_is_left_to_it(tmp_path):
    """`asrd transcribe` may claim the very job the daemon just picked: the daemon must not crash
    (launchd would restart it) nor take the job over."""
    config = load_config(write_config(tmp_path))
    config.inbox.mkdir(parents=True)
    memo = config.inbox / "memo.wav"
    memo.write_bytes(b"RIFF" + bytes(2000))
    daemon = Daemon(config)
    st = memo.stat()
    job, _ = daemon.ledger.offer(memo, st.st_size, st.st_mtime_ns, daemon_mod.sha256_file(memo))
    picked = daemon.ledger.next_due(time.time())
    daemon.ledger.claim(job.id, owner_pid=os.getppid())  # a live process got there first
    daemon._work(picked)
    after = daemon.ledger.get(job.id)
    assert after.state == "running" and after.owner_pid == os.getppid()


def test_a_job_whose_content_moved_to_another_known_path_is_run_from_there(tmp_path, monkeypatch):
    """Its old path holds another recording now, a copy elsewhere holds its content: the engine must
    be given the copy, never the old path (that would transcribe the wrong recording)."""
    config = load_config(write_config(tmp_path))
    (config.inbox / "sub").mkdir(parents=True)
    original, copy = config.inbox / "memo.wav", config.inbox / "sub" / "memo copy.wav"
    original.write_bytes(b"RIFF" + bytes(2000))
    copy.write_bytes(original.read_bytes())
    daemon = Daemon(config)
    for path in (original, copy):
        st = path.stat()
        daemon.ledger.remember_hash(path, st.st_size, st.st_mtime_ns, daemon_mod.sha256_file(path))
    st = original.stat()
    _job, _ = daemon.ledger.offer(original, st.st_size, st.st_mtime_ns, daemon_mod.sha256_file(original))
    original.write_bytes(b"RIFF" + bytes([1]) * 2000)  # saved over: another recording, same name
    given = []
    monkeypatch.setattr(daemon, "_transcribe", lambda job, path: given.append(path) or JobOutcome(STOPPED))
    daemon._work(daemon.ledger.next_due(time.time()))
    assert given == [copy]


def test_an_error_in_the_loop_is_logged_backed_off_and_survived(tmp_path, monkeypatch):
    """A bug or a passing I/O error in one turn of the loop must neither kill the daemon (launchd
    would respawn it into the same error) nor spin: each consecutive error waits longer, and a good
    turn resets the count."""
    config = load_config(write_config(tmp_path))
    config.inbox.mkdir(parents=True)
    daemon = Daemon(config)
    monkeypatch.setattr(daemon, "_start", lambda previous_pid: None)
    monkeypatch.setattr(daemon, "_install_signal_handlers", lambda: None)  # this test process keeps its own
    turns = iter(["boom", "boom", "ok", "boom", "stop"])

    def step():
        turn = next(turns)
        if turn == "stop":
            daemon.stopping.set()
        elif turn == "boom":
            raise OSError("database is locked")

    waits = []
    monkeypatch.setattr(daemon, "_step", step)
    monkeypatch.setattr(daemon.stopping, "wait", lambda seconds: waits.append(seconds))
    with capture_logs() as logs:
        assert daemon.run() == 0
    errors = [e["consecutive"] for e in logs if e["event"] == "daemon.error"]
    assert errors == [1, 2, 1]
    assert waits == [daemon_mod.backoff_s(n, base=1.0, cap=60.0) for n in (1, 2, 1)] and waits[1] > waits[0] > 0


def test_a_dead_daemon_s_orphans_are_all_recovered_and_one_that_killed_it_max_crashes_times_fails(tmp_path):
    """At start, every job a dead daemon held is dealt with: a one-shot's file outside the inbox is
    dropped, an inbox recording queued again, and one that has now taken asrd down
    `engine.max_crashes` times fails with a record beside it instead of a respawn loop."""
    import subprocess
    import sys

    from asrd.error_record import error_record_path

    config = load_config(write_config(tmp_path, engine={"max_crashes": 2}))
    config.inbox.mkdir(parents=True)
    outside = tmp_path / "elsewhere" / "talk.wav"
    outside.parent.mkdir()
    poison, memo = config.inbox / "poison.wav", config.inbox / "memo.wav"
    for n, path in enumerate((outside, poison, memo)):
        path.write_bytes(b"RIFF" + bytes(100 * (n + 1)))
    daemon = Daemon(config)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid: a daemon that died holding the lock
    jobs = [daemon.ledger.offer(p, p.stat().st_size, p.stat().st_mtime_ns, f"{n:064x}")[0]
            for n, p in enumerate((outside, poison, memo))]
    daemon.ledger.claim(jobs[1].id, owner_pid=dead.pid)
    assert daemon.ledger.recover_running(crashed_pid=dead.pid)[0].crashes == 1  # it took asrd down once before
    for job in jobs:
        daemon.ledger.claim(job.id, owner_pid=dead.pid)
    with capture_logs() as logs:
        daemon._recover_orphans(crashed_pid=dead.pid)
    said = [(e["event"], e["file"]) for e in logs if e["event"] in ("job.dropped", "job.failed", "job.requeued")]
    assert said == [("job.dropped", str(outside)), ("job.failed", str(poison)), ("job.requeued", str(memo))]
    assert daemon.ledger.by_content(jobs[0].size, jobs[0].sha256) is None  # dropped: its caller is gone
    assert daemon.ledger.get(jobs[1].id).state == "failed" and error_record_path(poison).exists()
    assert daemon.ledger.get(jobs[2].id).state == "queued" and daemon.ledger.get(jobs[2].id).crashes == 1
    assert not error_record_path(memo).exists()


@contextmanager
def _signal_handlers(daemon: Daemon):
    """The daemon's SIGTERM/SIGINT/SIGHUP handlers in this test process, this process's own put back after."""
    kept = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        daemon._install_signal_handlers()
        yield
    finally:
        for sig, handler in kept.items():
            signal.signal(sig, handler)


def test_a_stop_signal_is_logged_once_and_ends_the_loop(tmp_path):
    """launchd's SIGTERM at logout, then perhaps a Ctrl-C: the log says which signal stopped asrd,
    once, and the loop's wait is woken at once."""
    config = load_config(write_config(tmp_path))
    config.inbox.mkdir(parents=True)
    daemon = Daemon(config)
    with _signal_handlers(daemon), capture_logs() as logs:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # the handlers run in this thread between two bytecodes
    assert daemon.stopping.is_set() and daemon.watcher.wake().is_set()
    assert [(e["event"], e.get("signal")) for e in logs] == [("daemon.signal", "SIGTERM")]


def test_sighup_wakes_the_idle_loop_to_reload_at_once(tmp_path):
    """`launchctl kill HUP` after an edit: the reload happens now, not at the loop's next look."""
    config = load_config(write_config(tmp_path))
    config.inbox.mkdir(parents=True)
    daemon = Daemon(config)
    with _signal_handlers(daemon):
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(0.01)
    assert daemon._reload.is_set() and daemon.watcher.wake().is_set() and not daemon.stopping.is_set()


def test_each_stage_of_a_job_shows_in_status_at_once(tmp_path):
    """`asrd status` during an hour-long file: the stage (decoding, detecting speech, recognising)
    changes at most a few times, each after minutes of silence, so each must reach status.json when
    it happens, not at the next throttled write."""
    from asrd.engine.protocol import JobStage
    from asrd.status import read_status

    config = load_config(write_config(tmp_path))
    config.inbox.mkdir(parents=True)
    daemon = Daemon(config)
    daemon._current = {"job_id": 1, "file": str(config.inbox / "memo.m4a"), "stage": "opening"}
    daemon._write_status()
    for stage in ("decoding", "detecting_speech", "recognising"):
        daemon._stage(JobStage(1, stage))
        assert read_status(config.state_dir)["job"]["stage"] == stage


def test_a_reload_that_changes_only_the_resolved_models_restarts_the_engine(tmp_path, monkeypatch):
    """`model.punc: null` taken out of the file: no setting's value differs (punc is None either way),
    but the preset's punctuation model now applies, so the engine must load again (the old one is
    stopped: two engines would hold two sets of models in memory)."""
    data, path = config_data(tmp_path, "paraformer-zh"), tmp_path / "config.yaml"
    data["model"]["punc"] = None
    path.write_text(yaml.safe_dump(data))
    daemon = Daemon(load_config(path), config_arg=str(path))
    engine, stopped = daemon.engine, []
    monkeypatch.setattr(engine, "stop", lambda reason: stopped.append(reason))
    del data["model"]["punc"]
    path.write_text(yaml.safe_dump(data))
    with capture_logs() as logs:
        daemon._reload_config()
    [reloaded] = [e for e in logs if e["event"] == "config.reloaded"]
    assert reloaded["changed"] == ["model.resolved"]
    assert daemon.engine is not engine and daemon.config.models()["punc"] == "ct-punc"
    assert stopped == ["configuration reloaded"]


def test_a_reload_that_moves_the_inbox_watches_the_new_one_and_keeps_the_engine(tmp_path):
    """SIGHUP with a new `inbox`: the README says inbox, outputs and watch settings apply at once; the
    engine (its models unchanged) is not reloaded for it."""
    path = write_config(tmp_path)
    daemon = Daemon(load_config(path), config_arg=str(path))
    daemon.watcher.start()
    old_watcher, engine = daemon.watcher, daemon.engine
    data = config_data(tmp_path, inbox=str(tmp_path / "new inbox"), watch={"settle_s": 0.1})
    path.write_text(yaml.safe_dump(data))
    try:
        with capture_logs() as logs:
            daemon._reload_config()
        [reloaded] = [e for e in logs if e["event"] == "config.reloaded"]
        assert sorted(reloaded["changed"]) == ["inbox", "watch.settle_s"]
        assert daemon.engine is engine and daemon.watcher is not old_watcher
        assert not old_watcher.inbox_available  # the old inbox is no longer watched
        memo = tmp_path / "new inbox" / "memo.wav"
        memo.write_bytes(b"\x01" * 1000)
        assert [r.path for r in _ready(daemon)] == [memo]
    finally:
        daemon.watcher.stop()


def test_a_transcribed_recording_renamed_takes_its_outputs_along(tmp_path):
    """Renamed in Finder after its transcripts were written: they follow it (a new recording saved
    under the old name later gets its own, and the log says the job moved, not that it resumed)."""
    daemon, memo, _job = queued_memo(tmp_path)
    run_job(daemon, lambda job, path: JobOutcome(DONE, transcript_of(job)))
    renamed = memo.with_name("standup.wav")
    memo.rename(renamed)
    with capture_logs() as logs:
        hand_on(daemon, renamed)
    [moved] = [e for e in logs if e["event"] in ("job.moved", "job.resumed")]
    assert (moved["event"], moved["file"], moved["moved_from"]) == ("job.moved", str(renamed), str(memo))
    assert renamed.with_suffix(".txt").exists() and not memo.with_suffix(".txt").exists()


def test_a_recording_that_went_missing_and_comes_back_under_a_new_name_resumes(tmp_path):
    daemon, memo, job = queued_memo(tmp_path)
    away = tmp_path / "away.wav"
    memo.rename(away)
    run_job(daemon, ends(STOPPED))  # its turn came while it was away: the job waits, no attempt
    assert daemon.ledger.get(job.id).missing_since is not None
    renamed = memo.with_name("standup.wav")
    away.rename(renamed)
    with capture_logs() as logs:
        hand_on(daemon, renamed)
    assert [(e["event"], e["moved_from"]) for e in logs if e["event"] in ("job.moved", "job.resumed")] \
        == [("job.resumed", str(memo))]
    after = daemon.ledger.get(job.id)
    assert (after.path, after.missing_since, after.attempts) == (str(renamed), None, 0)


def test_a_file_gone_between_the_watchers_look_and_the_hash_is_dropped_quietly_and_taken_when_back(tmp_path):
    """Dragged out of the inbox right after it settled, then back in (the same file, its times
    kept): while away it is neither unreadable nor a job; back, it is handed on and queued."""
    config = load_config(write_config(tmp_path, watch={"settle_s": 0.1}))
    config.inbox.mkdir(parents=True)
    memo, away = config.inbox / "memo.wav", tmp_path / "memo.wav"
    memo.write_bytes(b"RIFF" + bytes(2000))
    daemon = Daemon(config)
    daemon.watcher.start()
    try:
        [ready] = _ready(daemon)
        memo.rename(away)
        with capture_logs() as logs:
            daemon._offer(ready)
        assert [e for e in logs if e["log_level"] in ("warning", "error")] == []
        assert daemon.ledger.by_path(memo) is None
        away.rename(memo)
        [back] = _ready(daemon)
        daemon._offer(back)
    finally:
        daemon.watcher.stop()
    assert daemon.ledger.by_path(memo).state == "queued"
