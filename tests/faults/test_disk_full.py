"""The disk fills up while a job writes its outputs (a file of the set cannot be written): no
partial set is left, the recording is untouched, and the job is retried later and done once."""

from __future__ import annotations

from asrd.faults import FULL_WRITES
from asrd.hashing import sha256_file
from asrd.ledger import Ledger
from tests.support.daemon import DaemonRun
from tests.support.recordings import distinct_wav


def test_a_full_disk_mid_set_leaves_nothing_partial_and_the_job_is_retried(tmp_path, tiny_models, speech3):
    daemon = DaemonRun(tmp_path, env={FULL_WRITES: "1"}, outputs=["txt", "srt", "json"],
                       engine={"retry_delay_s": 4})
    daemon.inbox.mkdir(parents=True)
    memo = distinct_wav(speech3[0] / "speech3.wav", daemon.inbox / "memo.wav")
    before = sha256_file(memo)
    with daemon:
        [failed] = daemon.wait_for(lambda e: e["event"] == "job.failed", 120)
        assert failed["will_retry"] is True and "No space left on device" in failed["reason"]
        assert failed["retry_in_s"] >= 4 and [p.name for p in daemon.inbox.iterdir()] == ["memo.wav"]  # no half set
        daemon.wait_done(1)
        assert daemon.stop()[0] == 0
    assert sorted(p.name for p in daemon.inbox.iterdir()) == ["memo.json", "memo.srt", "memo.txt", "memo.wav"]
    assert sha256_file(memo) == before  # the recording untouched
    assert daemon.count("job.started") == 2 and daemon.count("job.done") == 1
    [job] = Ledger(tmp_path / "state").recent(10)
    assert job.state == "done" and job.attempts == 1
