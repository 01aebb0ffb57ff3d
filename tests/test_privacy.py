"""Private by default, checked on a real run with an ordinary umask: every file asrd creates is 0600,
every folder 0700, and the log of a whole run holds no transcript text at info level."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from tests.support.daemon import DaemonRun
from tests.support.recordings import distinct_wav


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_everything_asrd_creates_is_private_and_the_log_holds_no_words(tmp_path, tiny_models, speech3,
                                                                      private_home):
    home_before = sorted(Path(private_home).rglob("*"))
    old_umask = os.umask(0o022)  # what a login shell gives: files 0644 unless asrd says otherwise
    try:
        daemon = DaemonRun(tmp_path)
        daemon.start()
        try:
            daemon.wait_for(lambda e: e["event"] == "inbox.watching")
            memo = distinct_wav(speech3[0] / "speech3.wav", daemon.inbox / "memo.wav")
            broken = daemon.inbox / "broken.wav"
            broken.write_bytes(memo.read_bytes()[:20000])
            daemon.wait_done(1)
            daemon.wait_for(lambda e: e["event"] == "job.failed" and e.get("will_retry") is False, 180)
        finally:
            daemon.stop()
    finally:
        os.umask(old_umask)
    state = tmp_path / "state"
    created_files = [memo.with_suffix(s) for s in (".txt", ".srt", ".json")]
    created_files += [broken.with_name("broken.wav.asrd-error.json"), state / "status.json", state / "asrd.lock",
                      state / "ledger.sqlite3", state / "outputs.sqlite3", daemon.log_file]
    created_files += list((state / "transcripts").iterdir())
    for path in created_files:
        assert mode(path) == 0o600, (path, oct(mode(path)))
    for folder in (daemon.inbox, state, state / "transcripts", daemon.log_file.parent):
        assert mode(folder) == 0o700, (folder, oct(mode(folder)))
    words = [s["text"].strip() for s in json.loads(memo.with_suffix(".json").read_text())["segments"]]
    words = [w for w in words if len(w) >= 4]
    assert words  # the tiny model's noise is text all the same
    # nothing written outside the inbox and asrd's own state and log folders (its HOME untouched)
    assert sorted(Path(private_home).rglob("*")) == home_before
    assert {p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*")} == {"inbox", "state", "logs", "config.yaml"}
    log_text = daemon.log_file.read_text()
    info = [line for line in log_text.splitlines() if json.loads(line)["level"] != "debug"]
    assert not [w for w in words if any(w in line for line in info)]
