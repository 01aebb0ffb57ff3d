"""An output folder asrd may not write (an unprivileged user; as root, chmod proves nothing): the
recording beside which nothing can be written fails with a record in state_dir/errors that says
why, keeps its transcript for later, is never damaged, and the daemon goes on with the others."""

from __future__ import annotations

import json
import os
from pathlib import Path

from asrd.hashing import sha256_file
from asrd.ledger import Ledger
from tests.support.daemon import DaemonRun
from tests.support.recordings import distinct_wav


def test_a_read_only_folder_gets_a_record_elsewhere_and_the_rest_goes_on(unprivileged_user, speech3):
    user = unprivileged_user
    daemon = DaemonRun(user.home / "x", user=user, engine={"max_attempts": 1})
    locked = daemon.inbox / "locked"
    memo = distinct_wav(speech3[0] / "speech3.wav", locked / "memo.wav")
    user.own(daemon.inbox)
    os.chmod(locked, 0o500)  # the user may read and list it, not write in it
    assert user.cannot_write(locked) and not user.cannot_read(memo)
    before = sha256_file(memo)
    with daemon:
        [failed] = daemon.wait_for(lambda e: e["event"] == "job.failed" and e["file"] == str(memo), 120)
        other = distinct_wav(speech3[0] / "speech3.wav", daemon.inbox / "other.wav")
        user.own(other)
        daemon.wait_for(lambda e: e["event"] == "job.done" and e["file"] == str(other), 120)
        assert daemon.stop()[0] == 0
    assert "Permission denied" in failed["reason"] and failed["will_retry"] is False
    assert sorted(p.name for p in locked.iterdir()) == ["memo.wav"] and sha256_file(memo) == before
    record = json.loads(Path(failed["error_record"]).read_text())  # in state_dir/errors: it could not go beside
    assert failed["error_record"].startswith(str(daemon.root / "state" / "errors"))
    assert record["file"] == str(memo) and "Permission denied" in record["reason"]
    states = {j.path: j.state for j in Ledger(daemon.root / "state").recent(10)}
    assert states == {str(memo): "failed", str(other): "done"}
    assert any((daemon.root / "state" / "transcripts").iterdir())  # `asrd retry` will not recompute it
