"""Recordings whose mtime is far in the future or the past (a camera with a wrong clock, a file
restored from an old backup): transcribed like any other, once, in a real `asrd run`."""

from __future__ import annotations

import os
import time

from asrd.ledger import Ledger
from tests.support.daemon import DaemonRun
from tests.support.recordings import distinct_wav


def test_mtimes_in_the_future_and_the_distant_past_are_transcribed_once(tmp_path, tiny_models, speech3):
    daemon = DaemonRun(tmp_path, log_level="debug")  # debug: watcher.rescanned
    daemon.inbox.mkdir(parents=True)
    future = distinct_wav(speech3[0] / "speech3.wav", daemon.inbox / "future.wav")
    past = distinct_wav(speech3[0] / "speech3.wav", daemon.inbox / "past.wav")
    year = 365 * 24 * 3600
    os.utime(future, (time.time() + 5 * year,) * 2)
    os.utime(past, (86400.0, 86400.0))  # 2 January 1970
    with daemon:
        daemon.wait_done(2)
        later = distinct_wav(speech3[0] / "speech3.wav", daemon.inbox / "now.wav")  # and the queue still moves
        daemon.wait_for(lambda e: e["event"] == "job.done" and e["file"] == str(later), 120)
        daemon.wait_for(lambda e: e["event"] == "watcher.rescanned", 30)  # a rescan with them all settled
        assert daemon.stop()[0] == 0
    assert daemon.count("job.done") == 3 and daemon.count("job.started") == 3
    assert sorted(j.state for j in Ledger(tmp_path / "state").recent(10)) == ["done"] * 3
    assert all(p.with_suffix(".json").exists() for p in (future, past, later))
