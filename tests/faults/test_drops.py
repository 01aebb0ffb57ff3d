"""The same recording dropped twice in quick succession (a second copy over the first while the
first is settling, as a sync client or an impatient user does): one transcription, one set."""

from __future__ import annotations

import shutil
import time

from asrd.ledger import Ledger
from tests.support.daemon import DaemonRun
from tests.support.recordings import distinct_wav


def test_the_same_file_dropped_twice_quickly_is_transcribed_once(tmp_path, tiny_models, speech3):
    source = distinct_wav(speech3[0] / "speech3.wav", tmp_path / "memo.wav")
    daemon = DaemonRun(tmp_path / "run", log_level="debug")  # debug: watcher.rescanned
    daemon.inbox.mkdir(parents=True)
    with daemon:
        shutil.copyfile(source, daemon.inbox / "memo.wav")
        time.sleep(0.2)  # within the settle time: the second copy truncates and rewrites the first
        shutil.copyfile(source, daemon.inbox / "memo.wav")
        daemon.wait_done(1)
        shutil.copyfile(source, daemon.inbox / "memo.wav")  # and once more after it is done
        daemon.wait_for(lambda e: e["event"] == "file.seen" and e["file"].endswith("memo.wav"), 30, n=2)
        rescans = daemon.count("watcher.rescanned")  # two rescans after it settled: time to (wrongly) queue it
        daemon.wait_for(lambda e: e["event"] == "watcher.rescanned", 30, n=rescans + 2)
        assert daemon.stop()[0] == 0
    assert daemon.count("job.started") == 1 and daemon.count("job.done") == 1 and daemon.count("job.queued") == 1
    assert sorted(p.name for p in daemon.inbox.iterdir()) == ["memo.json", "memo.srt", "memo.txt", "memo.wav"]
    assert [j.state for j in Ledger(tmp_path / "run" / "state").recent(10)] == ["done"]
