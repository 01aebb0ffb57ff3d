"""How the daemon ends a job the engine has answered, in-process: what status.json shows meanwhile,
what the ledger keeps (counts, backoff, reason), what lands beside the recording and its copies, and
what happens when the recording changed or moved while the engine worked on it."""

from __future__ import annotations

import json
import os
import time

from structlog.testing import capture_logs

import asrd.daemon as daemon_mod
from asrd.engine.process import BAD_FILE, DONE, ERROR, LOAD_FAILED, STOPPED, JobOutcome
from asrd.engine.protocol import JobProgress
from asrd.error_record import error_record_path, write_error_record
from asrd.ledger import backoff_s
from asrd.status import read_status
from tests.support.in_process import (
    ends,
    hand_on,
    offer,
    queued_memo,
    run_job,
    transcript_of,
)


def test_status_shows_the_job_from_its_start_its_progress_and_drops_it_at_its_end(tmp_path, monkeypatch):
    """`asrd status` right after a job starts names it (0 % done), follows its progress, and no
    longer shows it the moment it ends: none of these waits for the next throttled write."""
    daemon, memo, job = queued_memo(tmp_path)
    monkeypatch.setattr(daemon_mod, "STATUS_EVERY_S", 3600.0)  # only forced writes get through
    daemon._write_status()
    seen = {}

    def engine(job, path):
        seen["start"] = dict(read_status(daemon.config.state_dir)["job"])
        monkeypatch.setattr(daemon_mod, "STATUS_EVERY_S", 0.0)  # progress is throttled, not forced
        daemon._progress(JobProgress(job.id, fraction=1 / 3, done_s=1.0, segments_done=1, segments_total=3))
        seen["progress"] = dict(read_status(daemon.config.state_dir)["job"])
        monkeypatch.setattr(daemon_mod, "STATUS_EVERY_S", 3600.0)
        return JobOutcome(STOPPED)

    run_job(daemon, engine)
    assert (seen["start"]["job_id"], seen["start"]["file"], seen["start"]["fraction"]) == (job.id, str(memo), 0.0)
    assert (seen["progress"]["fraction"], seen["progress"]["segments_done"], seen["progress"]["segments_total"]) \
        == (0.3333, 1, 3)
    assert read_status(daemon.config.state_dir)["job"] is None


def test_a_retry_after_a_crash_counts_the_crash_and_waits_its_backoff(tmp_path):
    """A recording that took the engine down once, then fails an ordinary attempt: the log says this
    is its second try, and the wait is the second step of the backoff (both counters count)."""
    import subprocess
    import sys

    daemon, _memo, job = queued_memo(tmp_path, engine={"max_attempts": 3, "max_crashes": 3, "retry_delay_s": 10})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    daemon.ledger.claim(job.id, owner_pid=dead.pid)
    assert daemon.ledger.recover_running(crashed_pid=dead.pid)[0].crashes == 1
    before = time.time()
    with capture_logs() as logs:
        run_job(daemon, ends(ERROR, reason="decoder raised"))
    [failed] = [e for e in logs if e["event"] == "job.failed"]
    assert (failed["attempt"], failed["retry_in_s"], failed["will_retry"]) == (2, backoff_s(2, base=10), True)
    after = daemon.ledger.get(job.id)
    assert (after.state, after.attempts, after.crashes, after.last_error) == ("queued", 1, 1, "decoder raised")
    assert after.not_before >= before + backoff_s(2, base=10)


def test_models_that_fail_to_load_hold_the_job_back_without_counting_it(tmp_path):
    """A load failure is not the recording's fault: no attempt counted, the reason kept for `asrd
    status`, and the job waits the engine's backoff (2 s doubling, at most five minutes)."""
    daemon, _memo, job = queued_memo(tmp_path)
    for restarts, wait_s in ((3, 8.0), (12, 300.0)):
        daemon.engine.info.restarts = restarts
        before = time.time()
        run_job(daemon, ends(LOAD_FAILED, reason="model.pt is missing"))
        after = daemon.ledger.get(job.id)
        assert (after.state, after.attempts, after.crashes, after.last_error) == ("queued", 0, 0, "model.pt is missing")
        assert before + wait_s <= after.not_before <= time.time() + wait_s
        daemon.ledger.requeue(daemon.ledger.claim(job.id).id, None)  # due again, for the next round


def test_a_job_stopped_by_asrd_stopping_is_due_at_once_with_no_reason(tmp_path):
    daemon, _memo, job = queued_memo(tmp_path)
    run_job(daemon, ends(STOPPED, reason="asrd is stopping"))
    after = daemon.ledger.get(job.id)
    assert (after.state, after.attempts, after.last_error) == ("queued", 0, None)
    assert daemon.ledger.next_due(time.time()).id == job.id  # the next start takes it first thing


def _copy_handed_on(daemon, memo):
    """A copy of the queued memo, found (handed on) while its job waits."""
    copy = memo.with_name("memo copy.wav")
    copy.write_bytes(memo.read_bytes())
    hand_on(daemon, copy)
    return copy


def _announcements(daemon, monkeypatch) -> list:
    """The jobs the daemon announces as finished (done or failed for good), in order."""
    announced = []
    monkeypatch.setattr(daemon.notifier, "job_finished", announced.append)
    return announced


def test_a_finished_job_writes_outputs_clears_an_old_error_record_and_serves_its_copies(tmp_path, monkeypatch):
    """A recording saved again under a name that failed before: the stale error record goes once the
    transcript is there; a copy of it found while the job was queued gets its own transcripts; the
    job's end is announced once."""
    daemon, memo, job = queued_memo(tmp_path)
    write_error_record(memo, "cannot decode", 1, 0)
    copy = _copy_handed_on(daemon, memo)
    announced = _announcements(daemon, monkeypatch)
    with capture_logs() as logs:
        run_job(daemon, lambda job, path: JobOutcome(DONE, transcript_of(job)))
    assert memo.with_suffix(".txt").exists() and copy.with_suffix(".txt").exists()
    assert not error_record_path(memo).exists()
    assert [(j.id, j.state) for j in announced] == [(job.id, "done")]
    [done] = [e for e in logs if e["event"] == "job.done"]
    assert 0.0 <= done["write_s"] < 60.0


def test_a_failed_job_gets_its_record_beside_it_and_its_copies(tmp_path, monkeypatch):
    daemon, memo, job = queued_memo(tmp_path, engine={"max_attempts": 1})
    copy = _copy_handed_on(daemon, memo)
    announced = _announcements(daemon, monkeypatch)
    run_job(daemon, ends(BAD_FILE, reason="not an audio file"))
    assert daemon.ledger.get(job.id).state == "failed"
    assert error_record_path(memo).exists() and error_record_path(copy).exists()
    assert [(j.id, j.state) for j in announced] == [(job.id, "failed")]


def _rewritten_with_its_mtime_put_back(path):
    """Another recording of the same size saved at `path`, its mtime then restored to the nanosecond
    (what a sync or backup tool that keeps times may do): only the content tells them apart."""
    st = path.stat()
    path.write_bytes(bytes(reversed(path.read_bytes())))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_recording_replaced_mid_job_with_its_mtime_put_back_gets_no_transcript_of_the_old_one(tmp_path):
    daemon, memo, job = queued_memo(tmp_path)

    def engine(job, path):
        _rewritten_with_its_mtime_put_back(memo)
        return JobOutcome(DONE, transcript_of(job))

    run_job(daemon, engine)
    assert not memo.with_suffix(".txt").exists()
    assert daemon.ledger.get(job.id).state == "retired"


def test_a_recording_replaced_mid_job_with_its_mtime_put_back_gets_no_error_record_of_the_old_one(tmp_path):
    daemon, memo, job = queued_memo(tmp_path, engine={"max_attempts": 1})

    def engine(job, path):
        _rewritten_with_its_mtime_put_back(memo)
        return JobOutcome(BAD_FILE, reason="not an audio file")

    run_job(daemon, engine)
    assert not error_record_path(memo).exists()
    assert daemon.ledger.get(job.id).state == "retired"


def test_a_recording_replaced_mid_job_whose_copy_remains_gets_its_transcripts_beside_the_copy(tmp_path):
    """memo.wav is saved over while its job runs, and a copy of the old content sits in a subfolder:
    the transcript is the copy's (beside it, naming it), never written beside the new memo.wav."""
    daemon, memo, job = queued_memo(tmp_path)
    (daemon.config.inbox / "sub").mkdir()
    copy = daemon.config.inbox / "sub" / "memo copy.wav"
    copy.write_bytes(memo.read_bytes())
    offer(daemon, copy)  # known to the ledger as holding this content

    def engine(job, path):
        memo.write_bytes(b"RIFF" + bytes([1]) * 2000)
        return JobOutcome(DONE, transcript_of(job))

    run_job(daemon, engine)
    assert not memo.with_suffix(".txt").exists() and not memo.with_suffix(".json").exists()
    assert json.loads(copy.with_suffix(".json").read_text())["source"]["path"] == str(copy)
    assert daemon.ledger.get(job.id).path == str(copy)


def test_a_recording_of_another_size_with_the_old_mtime_is_not_given_to_the_engine(tmp_path):
    """Saved over between its hand-on and its turn, by a tool that keeps times: the size alone says it
    is another recording, so no transcription is spent on it under the old job."""
    daemon, memo, job = queued_memo(tmp_path)
    st = memo.stat()
    memo.write_bytes(b"RIFF" + bytes(3000))
    os.utime(memo, ns=(st.st_atime_ns, st.st_mtime_ns))
    given = []
    run_job(daemon, lambda job, path: given.append(path) or JobOutcome(STOPPED))
    assert given == [] and daemon.ledger.get(job.id).state == "retired"


def test_a_recording_replaced_mid_job_whose_copy_was_deleted_too_gets_no_transcripts_anywhere(tmp_path):
    """The ledger still remembers the copy's hash, but the copy is gone: the job has no recording
    left, so it is retired; it must not follow its content to a path that no longer holds it."""
    daemon, memo, job = queued_memo(tmp_path)
    copy = memo.with_name("memo copy.wav")
    copy.write_bytes(memo.read_bytes())
    offer(daemon, copy)

    def engine(job, path):
        copy.unlink()
        memo.write_bytes(b"RIFF" + bytes([1]) * 2000)
        return JobOutcome(DONE, transcript_of(job))

    run_job(daemon, engine)
    assert sorted(p.name for p in daemon.config.inbox.iterdir()) == ["memo.wav"]
    assert daemon.ledger.get(job.id).state == "retired"
