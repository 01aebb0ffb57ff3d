"""The daemon never opens a recording: the header probe runs in the engine child beside the decoder,
so a file that crashes or hangs libsndfile/FFmpeg costs that job, never the daemon."""

from __future__ import annotations

from pathlib import Path

from asrd import audio
from asrd.config import load_config
from asrd.daemon import Daemon
from asrd.engine.process import DONE
from asrd.error_record import error_record_path
from asrd.hashing import sha256_file
from asrd.ledger import Ledger
from tests.support.configs import write_config
from tests.support.daemon import DaemonRun
from tests.support.recordings import distinct_wav


def drop(speech3, target: Path) -> Path:
    return distinct_wav(speech3[0] / "speech3.wav", target)  # its own content: not a duplicate


def test_the_daemon_process_never_probes_or_decodes_a_recording(tmp_path, tiny_models, speech3, monkeypatch):
    def opened_in_the_daemon(path, *_args, **_kwargs):
        raise AssertionError(f"the daemon process opened {path}")

    monkeypatch.setattr(audio, "probe", opened_in_the_daemon)  # this process only: the child is spawned
    monkeypatch.setattr(audio, "decode", opened_in_the_daemon)
    memo = drop(speech3, tmp_path / "inbox" / "memo.wav")
    daemon = Daemon(load_config(write_config(tmp_path)))
    st = memo.stat()
    job, _ = daemon.ledger.offer(memo, st.st_size, st.st_mtime_ns, sha256_file(memo))
    try:
        outcome = daemon._transcribe(daemon.ledger.claim(job.id), memo)
    finally:
        daemon.engine.stop()
    assert outcome.status == DONE, outcome.reason
    assert len(outcome.transcript.segments) == 3


def test_a_probe_that_hangs_costs_the_job_not_the_daemon(tmp_path, tiny_models, speech3):
    daemon = DaemonRun(tmp_path, hooks={"hang_on": "stuck", "fault_stage": "opening"},
                       engine={"job_timeout": 5, "max_attempts": 1})
    stuck, good = drop(speech3, daemon.inbox / "stuck.wav"), drop(speech3, daemon.inbox / "good.wav")
    with daemon:
        daemon.wait_done(1)
        daemon.wait_for(lambda e: e["event"] == "job.failed" and e["file"] == str(stuck))
        assert daemon.proc.poll() is None
        daemon.stop()
    assert good.with_suffix(".txt").exists() and error_record_path(stuck).exists()
    ledger = Ledger(tmp_path / "state")
    assert ledger.by_path(stuck).last_error == "job took longer than its 5 s limit; engine killed"
    assert daemon.count("engine.timeout") == 1
