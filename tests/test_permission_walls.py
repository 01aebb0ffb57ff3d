"""Folders and files asrd may not read (macOS privacy protection, plain permissions) are waited out,
never failed: a real `asrd run` as an unprivileged user (as root, chmod proves nothing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from asrd.watcher import MISSING_RECHECK_S
from tests.support.daemon import DaemonRun
from tests.support.fake_tools import fake_path
from tests.support.recordings import distinct_wav


def test_an_unreadable_inbox_is_said_once_and_watched_once_it_can_be_read(unprivileged_user, speech3):
    user = unprivileged_user
    shown = user.home / "osascript.jsonl"  # a fake osascript first on PATH records the notifications
    tools = fake_path(user.home / "bin", "osascript")
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{tools}", "FAKE_OSASCRIPT_LOG": str(shown)}
    daemon = DaemonRun(user.home / "x", user=user, env=env)
    daemon.inbox.mkdir()
    user.own(daemon.inbox, user.home / "bin")
    os.chmod(daemon.inbox, 0)
    assert user.cannot_read(daemon.inbox)
    with daemon:
        [said] = daemon.wait_for(lambda e: e["event"] == "inbox.unreadable", 30)
        assert said["inbox"] == str(daemon.inbox) and "Permission denied" in said["error"]
        assert f"chmod u+rx '{daemon.inbox}'" in said["fix"]
        time.sleep(2 * MISSING_RECHECK_S + 1)  # two more probes: each would say it again if it were not once-only
        assert daemon.proc.poll() is None and daemon.count("inbox.unreadable") == 1
        assert daemon.count("inbox.watching") == 0 and daemon.count("inbox.missing") == 0
        assert shown.exists()  # the probes above gave the notifier seconds to deliver
        notes = [n for line in shown.read_text().splitlines() for n in json.loads(line)["notifications"]]
        assert len(notes) == 1 and str(daemon.inbox) in notes[0]["text"]  # told once, not only logged
        status = subprocess.run([sys.executable, "-m", "asrd", "status", "--config", str(daemon.config)],
                                capture_output=True, text=True, timeout=60, env=user.env(), check=False,
                                **user.popen_kwargs())
        assert "(cannot be read: Permission denied; see `asrd doctor`)" in status.stdout, status.stdout + status.stderr
        os.chmod(daemon.inbox, 0o700)
        fixed = time.monotonic()
        daemon.wait_for(lambda e: e["event"] == "inbox.readable", 15)
        memo = distinct_wav(speech3[0] / "speech3.wav", daemon.inbox / "memo.wav")
        user.own(memo)
        daemon.wait_for(lambda e: e["event"] == "job.queued" and e["file"] == str(memo), 15)
        assert time.monotonic() - fixed < 15  # within seconds of the fix, not at the next restart
        daemon.wait_done(1)
        assert daemon.count("inbox.unreadable") == 1
        code, _ = daemon.stop()
    assert code == 0 and memo.with_suffix(".json").exists()


def test_an_unreadable_recording_waits_without_failing_then_is_transcribed(unprivileged_user, speech3):
    user = unprivileged_user
    daemon = DaemonRun(user.home / "x", user=user, log_level="debug", engine={"max_attempts": 1})
    memo = distinct_wav(speech3[0] / "speech3.wav", daemon.inbox / "memo.wav")
    user.own(daemon.inbox)
    os.chmod(memo, 0)
    assert user.cannot_read(memo)
    with daemon:
        [said] = daemon.wait_for(lambda e: e["event"] == "file.unreadable" and e["file"] == str(memo), 30)
        assert "Permission denied" in said["reason"] and "chmod" in said["fix"]
        scans = daemon.count("watcher.rescanned")
        daemon.wait_for(lambda e: e["event"] == "watcher.rescanned", 30, n=scans + 2)  # offered again, twice
        assert daemon.count("file.unreadable") == 1  # said once, not at every rescan
        assert daemon.count("job.queued") == 0 and daemon.count("job.failed") == 0
        os.chmod(memo, 0o600)
        daemon.wait_done(1)
        code, _ = daemon.stop()
    assert code == 0 and daemon.count("job.failed") == 0
    assert not list(daemon.inbox.glob("*.asrd-error.json")) and not (daemon.root / "state" / "errors").exists()
    assert memo.with_suffix(".json").exists()


CLAIMED_THEN_UNREADABLE = """
import json, os, sys
from pathlib import Path
from asrd.config import load_config
from asrd.daemon import Daemon
from asrd.engine.process import BAD_FILE, JobOutcome
from asrd.hashing import sha256_file

daemon = Daemon(load_config(sys.argv[1]))
memo = Path(sys.argv[2])
st = memo.stat()
job, _ = daemon.ledger.offer(memo, st.st_size, st.st_mtime_ns, sha256_file(memo))
job = daemon.ledger.claim(job.id)
os.chmod(memo, 0)  # between the claim and the engine's read: the engine could not open it
daemon._settle(job, memo, JobOutcome(BAD_FILE, reason=f"[Errno 13] Permission denied: {str(memo)!r}"))
waiting = daemon.ledger.get(job.id)
os.chmod(memo, 0o600)
daemon._housekeeping()
back = daemon.ledger.get(job.id)
print(json.dumps({"state": waiting.state, "attempts": waiting.attempts, "missing": waiting.missing_since is not None,
                  "why": waiting.last_error, "back": back.missing_since is None, "back_state": back.state,
                  "records": [p.name for p in memo.parent.iterdir() if p.name.endswith(".asrd-error.json")]}))
"""


def test_a_claimed_recording_that_became_unreadable_waits_and_is_not_failed(unprivileged_user, tmp_path):
    """The engine's read error on a file asrd may not read is no fault of the recording: with one
    attempt allowed, blaming the file would fail it for good."""
    user = unprivileged_user
    daemon = DaemonRun(user.home / "x", user=user, engine={"max_attempts": 1})
    daemon.inbox.mkdir()
    memo = daemon.inbox / "memo.wav"
    memo.write_bytes(b"RIFF" + bytes(4000))
    user.own(daemon.root)
    result = subprocess.run([sys.executable, "-c", CLAIMED_THEN_UNREADABLE, str(daemon.config), str(memo)],
                            capture_output=True, text=True, timeout=120, env=user.env(), check=False,
                            **user.popen_kwargs())
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["state"] == "queued" and found["attempts"] == 0 and found["missing"], found
    assert "may not read" in found["why"] and found["records"] == []
    assert found["back"] and found["back_state"] == "queued"


def test_a_folder_that_lists_but_may_not_be_entered_is_unreadable_not_empty(unprivileged_user):
    """Read permission without search permission (mode r--): its names can be listed, but nothing in
    it can be opened or even looked at. asrd must call that unreadable, not an empty folder."""
    user = unprivileged_user
    folder = user.home / "inbox"
    folder.mkdir()
    (folder / "memo.wav").write_bytes(b"RIFF")
    open_folder = user.home / "open"
    open_folder.mkdir()
    (open_folder / "memo.wav").write_bytes(b"RIFF")
    user.own(folder, open_folder)
    os.chmod(folder, 0o444)
    assert user.can("-r", folder) and not user.can("-x", folder)
    probe = "import sys; from pathlib import Path; from asrd.watcher import listing_error as e; " \
            "print([type(e(Path(p))).__name__ for p in sys.argv[1:]])"
    result = subprocess.run([sys.executable, "-c", probe, str(folder), str(open_folder)], capture_output=True,
                            text=True, timeout=60, env=user.env(), check=False, **user.popen_kwargs())
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "['PermissionError', 'NoneType']"


WALLS_WHILE_WATCHED = """
import json, os, sys
from pathlib import Path
from structlog.testing import capture_logs
from asrd.watcher import InboxWatcher

inbox = Path(sys.argv[1])
trip = inbox / "trip"
w = InboxWatcher(inbox, settle_s=0.05, rescan_s=0.0, observe=False)  # every poll rescans
with capture_logs() as logs:
    w.start()
    w.poll()
    os.chmod(trip, 0)  # a subfolder closed while watched
    w.poll(); w.poll()
    os.chmod(trip, 0o700)
    w.poll()
    os.chmod(inbox, 0)  # then the inbox itself (its identity unchanged: only the rescan can tell)
    w.poll(); available_while_closed = w.inbox_available
    said_at_once = [e["event"] for e in logs].count("inbox.unreadable")  # by the poll that found it
    w.poll()
    os.chmod(inbox, 0o700)
    w.poll()
print(json.dumps({"events": [[e["event"], e.get("folder") or e.get("inbox")] for e in logs
                             if e["event"].startswith(("inbox.", "folder."))],
                  "closed": available_while_closed, "said": said_at_once, "open": w.inbox_available}))
"""


def test_a_subfolder_then_the_inbox_closed_while_watched_are_said_once_and_watched_again(unprivileged_user):
    """macOS privacy protection can close a folder under a running daemon: the rescan notices it, says
    it once, and watches again once it opens."""
    user = unprivileged_user
    inbox = user.home / "inbox"
    (inbox / "trip").mkdir(parents=True)
    user.own(inbox, inbox / "trip")
    result = subprocess.run([sys.executable, "-c", WALLS_WHILE_WATCHED, str(inbox)], capture_output=True, text=True,
                            timeout=60, env=user.env(), check=False, **user.popen_kwargs())
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    trip, home = str(inbox / "trip"), str(inbox)
    assert found["events"] == [["inbox.watching", home], ["folder.unreadable", trip], ["folder.readable", trip],
                               ["inbox.unreadable", home], ["inbox.readable", home], ["inbox.watching", home]]
    assert found["closed"] is False and found["said"] == 1 and found["open"] is True
