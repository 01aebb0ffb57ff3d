"""The job ledger: exactly one job per content, legal transitions only, the queue order and backoff,
recovery after a crash, retries, the hash cache, schema migrations, privacy, and two processes."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from contextlib import closing
from pathlib import Path

import psutil
import pytest

import asrd.ledger as ledger_mod
from asrd.ledger import STATES, IllegalTransition, JobNotFound, Ledger, LedgerError, backoff_s
from asrd.manifest import path_key
from tests.support.processes import dead_pid

T0 = 1_700_000_000.0
ROOT = Path(__file__).resolve().parent.parent


class FakeClock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def ledger(state_dir: Path, clock: FakeClock) -> Ledger:
    return Ledger(state_dir, clock=clock)


def sha(n: int) -> str:
    return f"{n:064x}"


def recording(path: Path, data: bytes) -> tuple[Path, int, int]:
    """Write a real file and return (path, size, mtime_ns), what the daemon would offer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    st = path.stat()
    return path, st.st_size, st.st_mtime_ns


# --------------------------------------------------------------------------- exactly once by content


def test_new_content_is_queued_once(ledger, tmp_path, clock):
    job, new = ledger.offer(tmp_path / "a.m4a", 10, 5, sha(1))
    assert new
    assert (job.state, job.path, job.size, job.mtime_ns, job.sha256) == (
        "queued", path_key(tmp_path / "a.m4a"), 10, 5, sha(1)
    )
    assert (job.attempts, job.crashes, job.last_error, job.outputs) == (0, 0, None, [])
    assert (job.queued_at, job.started_at, job.finished_at, job.not_before) == (T0, None, None, 0.0)
    again, new = ledger.offer(tmp_path / "a.m4a", 10, 5, sha(1))
    assert not new and again == job
    assert ledger.counts() == {"queued": 1, "running": 0, "done": 0, "failed": 0, "retired": 0}


def test_known_content_is_not_new_in_any_state(ledger, tmp_path):
    job, _ = ledger.offer(tmp_path / "a.m4a", 10, 5, sha(1))
    ledger.claim(job.id)
    ledger.complete(job.id, ["/x.txt"], 1.0, 0.5, 0.5)
    again, new = ledger.offer(tmp_path / "a.m4a", 10, 5, sha(1))
    assert not new and again.state == "done"


def test_renamed_file_keeps_its_job_and_the_path_follows(ledger, tmp_path):
    a, size, mtime = recording(tmp_path / "inbox" / "Recording.m4a", b"x" * 10)
    job, _ = ledger.offer(a, size, mtime, sha(1))
    b = tmp_path / "inbox" / "sub" / "Interview.m4a"
    b.parent.mkdir()
    os.rename(a, b)
    moved, new = ledger.offer(b, size, b.stat().st_mtime_ns, sha(1))
    assert not new and moved.id == job.id
    assert moved.path == path_key(b) and moved.mtime_ns == b.stat().st_mtime_ns
    assert ledger.by_path(b).id == job.id and ledger.by_path(a) is None


def test_a_copy_leaves_the_job_where_it_is(ledger, tmp_path):
    a, size, mtime = recording(tmp_path / "a.m4a", b"x" * 10)
    job, _ = ledger.offer(a, size, mtime, sha(1))
    b, _, mtime_b = recording(tmp_path / "copy of a.m4a", b"x" * 10)
    same, new = ledger.offer(b, size, mtime_b, sha(1))
    assert not new and same.id == job.id and same.path == path_key(a)


def test_a_new_spelling_of_the_same_file_moves_the_job(ledger, tmp_path):
    """Like a case-only rename on a case-insensitive volume: both names open the one file."""
    a, size, mtime = recording(tmp_path / "recording.m4a", b"x" * 10)
    job, _ = ledger.offer(a, size, mtime, sha(1))
    os.link(a, tmp_path / "Recording.m4a")
    moved, new = ledger.offer(tmp_path / "Recording.m4a", size, mtime, sha(1))
    assert not new and moved.id == job.id and moved.path == path_key(tmp_path / "Recording.m4a")


def test_renamed_and_old_name_reused_the_job_follows_the_content(ledger, tmp_path):
    """Recording.m4a renamed to Old.m4a, then a new Recording.m4a: the old path no longer holds it."""
    a, size, mtime = recording(tmp_path / "Recording.m4a", b"x" * 10)
    job, _ = ledger.offer(a, size, mtime, sha(1))
    os.rename(a, tmp_path / "Old.m4a")
    _, size2, mtime2 = recording(a, b"y" * 10)  # same size, other content: known through the cache
    ledger.remember_hash(a, size2, mtime2, sha(2))
    moved, new = ledger.offer(tmp_path / "Old.m4a", size, mtime, sha(1))
    assert not new and moved.id == job.id and moved.path == path_key(tmp_path / "Old.m4a")


def test_renamed_and_old_name_reused_at_once_by_another_size_the_job_follows(ledger, tmp_path):
    """The new Recording.m4a is not hashed yet when the rename is offered: its other size alone
    says the old path no longer holds the job's content."""
    a, size, mtime = recording(tmp_path / "Recording.m4a", b"x" * 10)
    job, _ = ledger.offer(a, size, mtime, sha(1))
    os.rename(a, tmp_path / "Old.m4a")
    recording(a, b"y" * 12)
    moved, new = ledger.offer(tmp_path / "Old.m4a", size, mtime, sha(1))
    assert not new and moved.id == job.id and moved.path == path_key(tmp_path / "Old.m4a")
    assert ledger.by_path(a) is None


def test_same_name_new_content_is_a_new_job_and_the_old_one_stays(ledger, tmp_path):
    path = tmp_path / "Recording.m4a"
    old, _ = ledger.offer(path, 10, 5, sha(1))
    ledger.claim(old.id)
    ledger.complete(old.id, ["/r.txt"], 1.0, 1.0, 1.0)
    new_job, new = ledger.offer(path, 12, 9, sha(2))
    assert new and new_job.id != old.id and new_job.state == "queued"
    assert ledger.get(old.id).state == "done"
    assert ledger.by_path(path).id == new_job.id
    assert ledger.counts() == {"queued": 1, "running": 0, "done": 1, "failed": 0, "retired": 0}


def test_same_hash_other_size_is_other_content(ledger, tmp_path):
    _, new1 = ledger.offer(tmp_path / "a.m4a", 10, 5, sha(1))
    _, new2 = ledger.offer(tmp_path / "b.m4a", 11, 5, sha(1))
    assert new1 and new2


# --------------------------------------------------------------------------- states and transitions


def test_claim_complete(ledger, tmp_path, clock):
    job, _ = ledger.offer(tmp_path / "a.m4a", 10, 5, sha(1))
    clock.advance(1)
    running = ledger.claim(job.id)
    assert (running.state, running.started_at, running.owner_pid) == ("running", T0 + 1, os.getpid())
    assert [j.id for j in ledger.running()] == [job.id]
    clock.advance(2)
    done = ledger.complete(job.id, ["/a.txt", Path("/a.srt")], 60.0, 6.0, 0.1)
    assert done.state == "done" and done.outputs == ["/a.txt", "/a.srt"]
    assert (done.audio_s, done.processing_s, done.rtf, done.finished_at) == (60.0, 6.0, 0.1, T0 + 3)
    assert done.owner_pid is None and ledger.running() == []


@pytest.mark.parametrize(
    ("setup", "action"),
    [
        ([], "complete"),  # queued -> done
        ([], "requeue"),  # queued -> queued
        (["claim"], "claim"),  # running -> running
        (["claim", "complete"], "claim"),
        (["claim", "complete"], "requeue"),
        (["claim", "complete"], "fail"),
        (["claim", "complete"], "complete"),
        (["fail"], "claim"),
        (["fail"], "complete"),
        (["fail"], "requeue"),
        (["fail"], "fail"),
    ],
)
def test_illegal_transitions_raise_and_change_nothing(ledger, tmp_path, setup, action):
    job, _ = ledger.offer(tmp_path / "a.m4a", 10, 5, sha(1))
    calls = {
        "claim": lambda: ledger.claim(job.id),
        "complete": lambda: ledger.complete(job.id, [], 1.0, 1.0, 1.0),
        "requeue": lambda: ledger.requeue(job.id, "x", "attempt"),
        "fail": lambda: ledger.fail(job.id, "bad"),
    }
    for step in setup:
        calls[step]()
    before = ledger.get(job.id)
    with pytest.raises(IllegalTransition):
        calls[action]()
    assert ledger.get(job.id) == before


def test_unknown_job_raises_job_not_found(ledger):
    with pytest.raises(JobNotFound):
        ledger.get(99)
    with pytest.raises(KeyError):  # JobNotFound is also a KeyError
        ledger.claim(99)


def test_fail_from_queued_and_running(ledger, tmp_path, clock):
    a, _ = ledger.offer(tmp_path / "a.m4a", 10, 5, sha(1))
    b, _ = ledger.offer(tmp_path / "b.m4a", 10, 6, sha(2))
    ledger.claim(b.id)
    clock.advance(5)
    for job in (a, b):
        failed = ledger.fail(job.id, "no audio stream")
        assert (failed.state, failed.last_error, failed.finished_at) == ("failed", "no audio stream", T0 + 5)


def test_requeue_counts_and_backoff(ledger, tmp_path, clock):
    job, _ = ledger.offer(tmp_path / "a.m4a", 10, 5, sha(1))
    ledger.claim(job.id)
    stopped = ledger.requeue(job.id, None)  # daemon stopping: not the file's fault
    assert (stopped.state, stopped.attempts, stopped.crashes, stopped.last_error) == ("queued", 0, 0, None)
    assert stopped.started_at is None and stopped.not_before == T0
    ledger.claim(job.id)
    tried = ledger.requeue(job.id, "decode hiccup", "attempt", delay_s=backoff_s(1))
    assert (tried.attempts, tried.crashes, tried.last_error, tried.not_before) == (1, 0, "decode hiccup", T0 + 5)
    ledger.claim(job.id)
    crashed = ledger.requeue(job.id, "engine died", "crash", delay_s=10)
    assert (crashed.attempts, crashed.crashes, crashed.last_error) == (1, 1, "engine died")
    ledger.claim(job.id)
    assert ledger.requeue(job.id, None).last_error == "engine died"  # no reason: kept


def test_fail_may_count_the_failing_try(ledger, tmp_path):
    job, _ = ledger.offer(tmp_path / "a.m4a", 10, 5, sha(1))
    ledger.claim(job.id)
    ledger.requeue(job.id, "hiccup", "attempt")
    ledger.claim(job.id)
    failed = ledger.fail(job.id, "still broken", count="attempt")
    assert (failed.attempts, failed.crashes) == (2, 0)
    other, _ = ledger.offer(tmp_path / "b.m4a", 10, 6, sha(2))
    ledger.claim(other.id)
    assert ledger.fail(other.id, "engine died", count="crash").crashes == 1
    third, _ = ledger.offer(tmp_path / "c.m4a", 10, 7, sha(3))
    with pytest.raises(ValueError):
        ledger.fail(third.id, "x", count="bogus")
    assert ledger.get(third.id).state == "queued"


def test_requeue_rejects_an_unknown_count(ledger, tmp_path):
    job, _ = ledger.offer(tmp_path / "a.m4a", 10, 5, sha(1))
    ledger.claim(job.id)
    with pytest.raises(ValueError):
        ledger.requeue(job.id, "x", "attempts")
    assert ledger.get(job.id).state == "running"


def test_backoff_is_exponential_and_capped():
    assert [backoff_s(n) for n in range(0, 9)] == [0, 5, 10, 20, 40, 80, 160, 300, 300]
    assert backoff_s(3, base=1, cap=60) == 4
    assert backoff_s(10_000) == 300
    # past 64 retries the cap is taken without computing 2**n; up to there the series is exact
    assert backoff_s(64, base=1, cap=float("inf")) == 2.0**63
    assert backoff_s(65, base=1, cap=float("inf")) == float("inf")


# --------------------------------------------------------------------------- the queue


def test_next_due_takes_the_oldest_file_first_then_the_first_offered(ledger, tmp_path):
    ids = {}
    for name, mtime in [("new", 300), ("old", 100), ("mid", 200), ("mid-too", 200)]:
        ids[name] = ledger.offer(tmp_path / f"{name}.m4a", 10, mtime, sha(mtime + len(name)))[0].id
    order = []
    while (job := ledger.next_due(T0)) is not None:
        order.append(job.id)
        ledger.claim(job.id)
    assert order == [ids["old"], ids["mid"], ids["mid-too"], ids["new"]]
    assert ledger.next_due(T0) is None


def test_next_due_respects_backoff(ledger, tmp_path, clock):
    old, _ = ledger.offer(tmp_path / "old.m4a", 10, 100, sha(1))
    young, _ = ledger.offer(tmp_path / "young.m4a", 10, 200, sha(2))
    ledger.claim(old.id)
    ledger.requeue(old.id, "hiccup", "attempt", delay_s=30)
    assert ledger.next_due(T0).id == young.id
    assert [j.id for j in ledger.queued()] == [young.id, old.id]
    assert ledger.next_due(T0 + 29.9).id == young.id
    assert ledger.next_due(T0 + 30).id == old.id
    assert [j.id for j in ledger.queued(now=T0 + 30)] == [old.id, young.id]
    assert [j.id for j in ledger.queued(limit=1)] == [young.id]


def test_queued_orders_backing_off_jobs_by_when_they_are_due(ledger, tmp_path):
    jobs = [ledger.offer(tmp_path / f"{i}.m4a", 10, i, sha(i))[0] for i in range(3)]
    for job, delay in zip(jobs, (50, 20, 0)):
        ledger.claim(job.id)
        ledger.requeue(job.id, None, delay_s=delay)
    assert [j.id for j in ledger.queued()] == [jobs[2].id, jobs[1].id, jobs[0].id]


def test_has_pending_counts_queued_work_in_the_inbox_even_backing_off_but_not_missing(ledger, tmp_path):
    """What keeps the Mac awake: queued (due or after a backoff), in the inbox, its recording there."""
    inbox = tmp_path / "inbox"
    assert not ledger.has_pending(inbox)
    outside, _ = ledger.offer(tmp_path / "inbox2" / "x.m4a", 10, 1, sha(1))  # a sibling folder, not inside
    assert not ledger.has_pending(inbox)
    job, _ = ledger.offer(inbox / "a.m4a", 10, 2, sha(2))
    assert ledger.has_pending(inbox)
    ledger.claim(job.id)
    assert not ledger.has_pending(inbox)  # running: the daemon holds the assertion for it itself
    ledger.requeue(job.id, "hiccup", "attempt", delay_s=300)
    assert ledger.has_pending(inbox)
    ledger.mark_missing(job.id, "gone")
    assert not ledger.has_pending(inbox)
    assert ledger.has_pending(tmp_path / "inbox2") and outside.state == "queued"


# --------------------------------------------------------------------------- recovery and retries


def test_recover_running_requeues_jobs_of_dead_processes_uncounted(ledger, tmp_path):
    a, _ = ledger.offer(tmp_path / "a.m4a", 10, 1, sha(1))
    b, _ = ledger.offer(tmp_path / "b.m4a", 10, 2, sha(2))
    c, _ = ledger.offer(tmp_path / "c.m4a", 10, 3, sha(3))
    ledger.claim(a.id, owner_pid=dead_pid())
    ledger.claim(b.id, owner_pid=dead_pid())
    recovered = ledger.recover_running()
    assert [j.id for j in recovered] == [a.id, b.id]
    assert all(j.state == "queued" and j.attempts == 0 and j.crashes == 0 for j in recovered)
    assert all(j.started_at is None and j.owner_pid is None for j in recovered)
    assert ledger.get(c.id).state == "queued" and ledger.running() == []
    assert ledger.recover_running() == []


def test_recover_running_leaves_a_live_process_job_alone(state_dir, tmp_path):
    """A one-shot `asrd transcribe` running beside a daemon that starts must keep its job."""
    ledger = Ledger(state_dir)  # real clock: liveness compares process start and claim times
    job, _ = ledger.offer(tmp_path / "a.m4a", 10, 1, sha(1))
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.05)
        ledger.claim(job.id, owner_pid=other.pid)
        assert ledger.recover_running() == []
        assert ledger.get(job.id).state == "running"
    finally:
        other.kill()
        other.wait()
    assert [j.id for j in ledger.recover_running()] == [job.id]


def test_recover_running_treats_a_reused_pid_as_dead(ledger, tmp_path):
    """The claim (fake clock, 2023) predates this live process: the pid was re-used."""
    job, _ = ledger.offer(tmp_path / "a.m4a", 10, 1, sha(1))
    ledger.claim(job.id)  # owned by this (live) process, but "claimed" before it started
    assert [j.id for j in ledger.recover_running()] == [job.id]


def test_recover_running_include_live(state_dir, tmp_path):
    ledger = Ledger(state_dir)
    job, _ = ledger.offer(tmp_path / "a.m4a", 10, 1, sha(1))
    ledger.claim(job.id)
    assert ledger.recover_running() == []
    assert [j.id for j in ledger.recover_running(include_live=True)] == [job.id]


def test_retry_by_path_redoes_a_done_job_and_resets_counters(ledger, tmp_path):
    path = tmp_path / "a.m4a"
    job, _ = ledger.offer(path, 10, 1, sha(1))
    ledger.claim(job.id)
    ledger.requeue(job.id, "hiccup", "attempt", delay_s=100)
    ledger.claim(job.id)
    ledger.complete(job.id, ["/a.txt"], 1.0, 1.0, 1.0)
    [again] = ledger.retry(path)
    assert again.id == job.id and again.state == "queued"
    assert (again.attempts, again.crashes, again.not_before, again.last_error) == (0, 0, 0.0, None)
    assert again.finished_at is None
    assert ledger.next_due(T0).id == job.id


def test_retry_by_path_takes_the_newest_job_and_never_a_running_one(ledger, tmp_path):
    path = tmp_path / "Recording.m4a"
    old, _ = ledger.offer(path, 10, 1, sha(1))
    ledger.claim(old.id)
    ledger.fail(old.id, "bad")
    newer, _ = ledger.offer(path, 11, 2, sha(2))
    ledger.claim(newer.id)
    assert ledger.retry(path) == []  # running: requeueing it would run it twice
    assert ledger.get(old.id).state == "failed"
    assert ledger.retry(tmp_path / "unknown.m4a") == []


def test_retry_failed_requeues_every_failed_job(ledger, tmp_path):
    jobs = [ledger.offer(tmp_path / f"{i}.m4a", 10, i, sha(i))[0] for i in range(4)]
    for job in jobs[:3]:
        ledger.claim(job.id)
    ledger.fail(jobs[0].id, "x")
    ledger.fail(jobs[1].id, "y")
    ledger.complete(jobs[2].id, [], 1.0, 1.0, 1.0)
    retried = ledger.retry(failed=True)
    assert sorted(j.id for j in retried) == [jobs[0].id, jobs[1].id]
    assert ledger.counts() == {"queued": 3, "running": 0, "done": 1, "failed": 0, "retired": 0}
    assert ledger.retry(tmp_path / "2.m4a", failed=True) == []  # done, not failed
    with pytest.raises(ValueError):
        ledger.retry()


def test_recent_lists_finished_jobs_newest_first(ledger, tmp_path, clock):
    jobs = [ledger.offer(tmp_path / f"{i}.m4a", 10, i, sha(i))[0] for i in range(4)]
    for job in jobs[:3]:
        ledger.claim(job.id)
    for job, end in ((jobs[1], "fail"), (jobs[0], "done"), (jobs[2], "done")):
        clock.advance(1)
        ledger.fail(job.id, "x") if end == "fail" else ledger.complete(job.id, [], 1.0, 1.0, 1.0)
    assert [j.id for j in ledger.recent()] == [jobs[2].id, jobs[0].id, jobs[1].id]
    assert [j.id for j in ledger.recent(limit=1)] == [jobs[2].id]


def test_counts_has_every_state(ledger):
    assert ledger.counts() == dict.fromkeys(STATES, 0)


# --------------------------------------------------------------------------- hash cache


def test_hash_cache_hits_only_for_the_same_size_and_mtime(ledger, tmp_path):
    path = tmp_path / "a.m4a"
    assert ledger.cached_hash(path, 10, 5) is None
    ledger.remember_hash(path, 10, 5, sha(1))
    assert ledger.cached_hash(path, 10, 5) == sha(1)
    assert ledger.cached_hash(tmp_path / "sub" / ".." / "a.m4a", 10, 5) == sha(1)  # one spelling
    assert ledger.cached_hash(path, 10, 6) is None
    assert ledger.cached_hash(path, 11, 5) is None
    ledger.remember_hash(path, 11, 6, sha(2))
    assert ledger.cached_hash(path, 11, 6) == sha(2)
    assert ledger.cached_hash(path, 10, 5) is None  # one entry per path: the latest


# --------------------------------------------------------------------------- schema and file


def test_schema_version_and_wal_are_recorded(ledger):
    with closing(sqlite3.connect(ledger.path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(ledger_mod.MIGRATIONS) == 2
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_new_migration_is_applied_once_at_open_and_keeps_the_data(state_dir, tmp_path, monkeypatch):
    job, _ = Ledger(state_dir).offer(tmp_path / "a.m4a", 10, 1, sha(1))
    applied = []

    def v3_add_note(conn):
        applied.append(1)
        conn.execute("ALTER TABLE jobs ADD COLUMN note TEXT")

    monkeypatch.setattr(ledger_mod, "MIGRATIONS", [*ledger_mod.MIGRATIONS, v3_add_note])
    ledger = Ledger(state_dir)
    Ledger(state_dir)  # already at version 3: nothing to do
    assert applied == [1]
    with closing(sqlite3.connect(ledger.path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        assert "note" in [r[1] for r in conn.execute("PRAGMA table_info(jobs)")]
    assert ledger.get(job.id) == job  # extra columns do not disturb Job


def test_a_version_0_file_is_migrated_from_scratch(state_dir):
    state_dir.mkdir()
    with closing(sqlite3.connect(state_dir / ledger_mod.DB_NAME)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    Ledger(state_dir)
    with closing(sqlite3.connect(state_dir / ledger_mod.DB_NAME)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(ledger_mod.MIGRATIONS)


def test_a_version_1_ledger_keeps_its_jobs_and_ids(state_dir, tmp_path, monkeypatch):
    """An asrd upgrade must not lose or renumber what an older one recorded."""
    state_dir.mkdir()
    with closing(sqlite3.connect(state_dir / ledger_mod.DB_NAME, isolation_level=None)) as conn:
        ledger_mod._v1_jobs_and_hashes(conn)
        conn.execute("PRAGMA user_version = 1")
        conn.execute("INSERT INTO jobs (id, path, size, mtime_ns, sha256, state, outputs, queued_at)"
                     " VALUES (7, '/x/a.m4a', 10, 1, ?, 'done', '[\"/x/a.txt\"]', 1.0)", (sha(1),))
        conn.execute("INSERT INTO jobs (id, path, size, mtime_ns, sha256, state, queued_at)"
                     " VALUES (9, '/x/b.m4a', 11, 2, ?, 'queued', 2.0)", (sha(2),))
    ledger = Ledger(state_dir)
    assert ledger.get(7).state == "done" and ledger.get(7).outputs == ["/x/a.txt"]
    assert ledger.get(9).state == "queued" and ledger.get(9).missing_since is None
    c, _ = ledger.offer(tmp_path / "c.m4a", 12, 3, sha(3))
    assert c.id == 10
    assert ledger.next_due(time.time()).id == 9


def test_a_failing_migration_changes_nothing(state_dir, monkeypatch):
    Ledger(state_dir)

    def v3_broken(conn):
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("bug in migration 3")

    monkeypatch.setattr(ledger_mod, "MIGRATIONS", [*ledger_mod.MIGRATIONS, v3_broken])
    with pytest.raises(RuntimeError):
        Ledger(state_dir)
    with closing(sqlite3.connect(state_dir / ledger_mod.DB_NAME)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    assert "half_done" not in tables


def test_a_ledger_from_a_newer_asrd_is_refused(state_dir):
    ledger = Ledger(state_dir)
    with closing(sqlite3.connect(ledger.path)) as conn:
        conn.execute("PRAGMA user_version = 7")
    with pytest.raises(LedgerError, match="newer"):
        Ledger(state_dir)


def test_db_files_are_private(state_dir, tmp_path):
    old = os.umask(0o022)
    try:
        ledger = Ledger(state_dir)
        ledger.offer(tmp_path / "a.m4a", 10, 1, sha(1))
        with closing(sqlite3.connect(ledger.path)) as conn:  # keep -wal/-shm in existence
            conn.execute("SELECT COUNT(*) FROM jobs").fetchone()
            for suffix in ("", "-wal", "-shm"):
                p = Path(f"{ledger.path}{suffix}")
                if suffix == "" or p.exists():
                    assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    finally:
        os.umask(old)
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    assert ledger.path == state_dir / "ledger.sqlite3"


# --------------------------------------------------------------------------- two processes


_OFFER_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from asrd.ledger import Ledger

    state_dir, start_at, name = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    while time.time() < start_at:
        time.sleep(0.001)
    ledger = Ledger(Path(state_dir))  # a fresh db: the opens (WAL switch, migration) race too
    results = []
    for i in range(20):
        job, new = ledger.offer(f"/inbox/{name}-{i}.m4a", 1000 + i, 1, f"{i:064x}")
        results.append([job.id, new])
    print(json.dumps(results))
    """
)


def test_processes_offering_the_same_content_at_once_get_one_job(state_dir):
    start_at = time.time() + 1.0  # every process imported and waiting when the race starts
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OFFER_SCRIPT, str(state_dir), str(start_at), f"p{n}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )
        for n in range(4)
    ]  # fmt: skip
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out))
    for i in range(20):
        claims = [out[i] for out in outputs]
        assert len({job_id for job_id, _ in claims}) == 1, claims  # one job per content
        assert sum(new for _, new in claims) == 1, claims  # exactly one process created it
    ledger = Ledger(state_dir)
    assert ledger.counts()["queued"] == 20


def test_retired_content_that_comes_back_is_a_recording_again(ledger, tmp_path):
    job, _ = ledger.offer(tmp_path / "half.wav", 10, 5, sha(1))
    ledger.retire(job.id, "superseded: half.wav now holds another recording")
    assert ledger.next_due(time.time()) is None
    again, created = ledger.offer(tmp_path / "again.wav", 10, 6, sha(1))
    assert created and again.id == job.id and again.state == "queued" and again.last_error is None
    assert again.path.endswith("again.wav") and ledger.next_due(time.time()).id == job.id


def test_a_missing_recording_waits_without_cost_and_resumes_where_it_is_seen(ledger, tmp_path):
    job, _ = ledger.offer(tmp_path / "a.wav", 10, 5, sha(1))
    running = ledger.claim(job.id)
    waiting = ledger.mark_missing(running.id, "gone")
    assert waiting.state == "queued" and waiting.attempts == 0 and waiting.missing_since is not None
    assert ledger.next_due(time.time()) is None and [j.id for j in ledger.missing()] == [job.id]
    back, created = ledger.offer(tmp_path / "b.wav", 10, 7, sha(1))  # a.wav is gone: it moved
    assert not created and back.path.endswith("b.wav") and back.missing_since is None
    assert ledger.next_due(time.time()).id == job.id


def test_found_again_clears_the_missing_reason_but_keeps_a_failed_attempts_error(ledger, tmp_path):
    job, _ = ledger.offer(tmp_path / "a.wav", 10, 5, sha(1))
    ledger.claim(job.id)
    ledger.requeue(job.id, "decode hiccup", "attempt")
    moved = ledger.found(job.id, tmp_path / "b.wav")  # renamed while it waits for its retry
    assert (moved.path, moved.last_error, moved.attempts) == (path_key(tmp_path / "b.wav"), "decode hiccup", 1)
    ledger.mark_missing(job.id, "recording missing")
    back = ledger.found(job.id)
    assert (back.missing_since, back.last_error, back.attempts) == (None, None, 1)


def test_a_state_folder_whose_parents_do_not_exist_yet_is_made_with_them(tmp_path):
    """A fresh account has no ~/.local/state (or a custom state_dir's parents) yet."""
    state = tmp_path / "fresh-home" / ".local" / "state" / "asrd"
    Ledger(state).offer(tmp_path / "a.wav", 10, 5, sha(1))
    assert stat.S_IMODE(state.stat().st_mode) == 0o700 and Ledger(state).counts()["queued"] == 1


def test_the_daemon_is_handed_only_recordings_in_its_inbox(ledger, tmp_path):
    outside, _ = ledger.offer(tmp_path / "desktop" / "a.wav", 10, 1, sha(1))
    inside, _ = ledger.offer(tmp_path / "inbox" / "b.wav", 11, 2, sha(2))
    lookalike, _ = ledger.offer(tmp_path / "inbox2" / "c.wav", 12, 0, sha(3))
    assert ledger.next_due(time.time(), under=tmp_path / "inbox").id == inside.id
    assert ledger.next_due(time.time()).id == lookalike.id


def test_an_orphan_of_a_dead_daemon_counts_a_crash_and_others_do_not(ledger, tmp_path):
    a, _ = ledger.offer(tmp_path / "a.wav", 10, 1, sha(1))
    b, _ = ledger.offer(tmp_path / "b.wav", 11, 2, sha(2))
    ledger.claim(a.id, owner_pid=999_999_1)
    ledger.claim(b.id, owner_pid=999_999_2)
    recovered = {j.id: j for j in ledger.recover_running(crashed_pid=999_999_1)}
    assert recovered[a.id].crashes == 1 and recovered[b.id].crashes == 0
    assert recovered[a.id].state == recovered[b.id].state == "queued"


def test_an_abandoned_redo_goes_back_to_done_and_an_abandoned_new_job_is_forgotten(ledger, tmp_path, clock):
    done, _ = ledger.offer(tmp_path / "a.wav", 10, 1, sha(1))
    ledger.complete(ledger.claim(done.id).id, ["/x/a.txt"], 1.0, 0.5, 0.5)
    clock.advance(100)
    ledger.retry_job(done.id)
    ledger.claim(done.id, owner_pid=999_999_1)
    new, _ = ledger.offer(tmp_path / "b.wav", 11, 2, sha(2))
    ledger.claim(new.id, owner_pid=999_999_1)
    for job in ledger.recover_running():
        ledger.abandon(job.id)
    assert ledger.get(done.id).state == "done" and ledger.get(done.id).outputs == ["/x/a.txt"]
    assert ledger.get(done.id).finished_at == clock()  # a done job has a time (`asrd status` shows it)
    assert ledger.by_content(11, sha(2)) is None


def test_recover_running_requeues_the_job_of_an_owner_that_exited_but_was_not_reaped(state_dir, tmp_path):
    """A zombie (dead, its exit status not yet collected) holds its pid but does no work: its job
    must be requeued, not left running for ever."""
    import psutil

    ledger = Ledger(state_dir)
    job, _ = ledger.offer(tmp_path / "a.m4a", 10, 1, sha(1))
    owner = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        ledger.claim(job.id, owner_pid=owner.pid)
        deadline = time.monotonic() + 10
        while psutil.Process(owner.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert [j.id for j in ledger.recover_running()] == [job.id]
    finally:
        owner.wait()


@pytest.mark.parametrize("start", ["new", "version 1"])
def test_lookups_by_path_and_by_content_use_an_index_whatever_version_the_ledger_came_from(state_dir, start):
    """Years of recordings make tens of thousands of rows: finding a path's job or a content's known
    paths must not scan them all, in a new ledger or one an older asrd made (its tables rebuilt)."""
    state_dir.mkdir()
    if start == "version 1":
        with closing(sqlite3.connect(state_dir / ledger_mod.DB_NAME, isolation_level=None)) as conn:
            ledger_mod._v1_jobs_and_hashes(conn)
            conn.execute("PRAGMA user_version = 1")
    Ledger(state_dir)
    with closing(sqlite3.connect(state_dir / ledger_mod.DB_NAME)) as conn:
        def plan(sql: str) -> str:
            return " ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", ("x", 1)))

        assert "USING INDEX jobs_by_path" in plan("SELECT * FROM jobs WHERE path = ? AND size = ? ORDER BY id DESC")
        assert "USING INDEX hashes_by_content" in plan("SELECT path FROM hashes WHERE sha256 = ? AND size = ?")
        assert "USING INDEX jobs_by_state" in plan("SELECT * FROM jobs WHERE state = ? AND size = ? ORDER BY mtime_ns")


def test_a_missing_recording_seen_again_at_its_own_path_is_handed_out_again(ledger, tmp_path):
    """The volume it was on came back, or it was put back where it was: the job resumes there."""
    job, _ = ledger.offer(tmp_path / "a.wav", 10, 5, sha(1))
    ledger.mark_missing(ledger.claim(job.id).id, "volume away")
    back, created = ledger.offer(tmp_path / "a.wav", 10, 9, sha(1))
    assert not created and back.id == job.id and back.missing_since is None and back.mtime_ns == 9
    assert ledger.next_due(time.time()).id == job.id


def test_an_illegal_transition_says_which_job_what_it_is_and_what_was_asked(ledger, tmp_path):
    job, _ = ledger.offer(tmp_path / "a.wav", 10, 5, sha(1))
    with pytest.raises(IllegalTransition) as raised:
        ledger.complete(job.id, [], 1.0, 0.1, 0.1)  # queued, never claimed
    assert str(raised.value) == f"job {job.id} is queued: cannot move it to done"
    assert (raised.value.job_id, raised.value.state, raised.value.to) == (job.id, "queued", "done")


def test_a_process_started_more_than_a_second_after_the_claim_is_not_its_owner():
    """pids are reused: an owner pid whose process began after the claim (past the 1 s slack of
    coarse start times) is another process, so the job is the dead claimer's orphan."""
    started = psutil.Process().create_time()
    assert ledger_mod._owner_alive(os.getpid(), started - 0.5)  # within the slack: still the claimer
    assert not ledger_mod._owner_alive(os.getpid(), started - 1.5)  # claimed 1.5 s before this process began
    assert ledger_mod._owner_alive(os.getpid(), None)  # no claim time recorded: a live pid is trusted
    assert not ledger_mod._owner_alive(None, started)  # no owner recorded: nobody holds it
