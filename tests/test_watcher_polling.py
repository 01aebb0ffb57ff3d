"""An inbox on a network volume gets watchdog's polling observer (the share sends no events for
what other machines write), and the log says so; `watch.polling` overrides the detection."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs
from watchdog.observers.polling import PollingObserver

import asrd.watcher as watcher_mod
from asrd.volumes import Volume
from tests.support.watching import wait_ready


@pytest.fixture
def on_volume(monkeypatch):
    """Make the inbox's file system the given type, as volume_of would find it."""
    def set_type(fstype: str) -> None:
        monkeypatch.setattr(watcher_mod, "volume_of", lambda path: Volume(fstype, "/mnt/share"))
    monkeypatch.setattr(watcher_mod, "POLLING_INTERVAL_S", 0.2)
    return set_type


@pytest.mark.parametrize(("fstype", "polling", "polls"), [
    ("nfs", "auto", True), ("smbfs", "auto", True), ("ext4", "auto", False),
    ("smbfs", "false", False), ("ext4", "true", True),
])
def test_the_observer_fits_the_volume(tmp_path, on_volume, fstype, polling, polls):
    on_volume(fstype)
    with capture_logs() as logs:
        w = watcher_mod.InboxWatcher(tmp_path / "inbox", settle_s=0.1, rescan_s=3600, polling=polling)
        w.start()
    try:
        assert w.polls is polls and isinstance(w._observer, PollingObserver) is polls
        [watching] = [e for e in logs if e["event"] == "inbox.watching"]
        assert watching["observer"] == ("polling" if polls else "events") and watching["filesystem"] == fstype
        assert watching["network_volume"] is (fstype in ("nfs", "smbfs"))
        memo = Path(tmp_path / "inbox" / "memo.wav")
        memo.write_bytes(b"\x01" * 1000)  # found by the observer: the rescan is an hour away
        assert [r.path for r in wait_ready(w, timeout=10.0)] == [memo]
    finally:
        w.stop()


def test_the_daemon_passes_watch_polling_on(tmp_path):
    from asrd.config import load_config
    from asrd.daemon import Daemon
    from tests.support.configs import write_config

    daemon = Daemon(load_config(write_config(tmp_path, watch={"polling": True})))
    assert daemon.watcher.polling == "true"


def test_a_network_inbox_is_polled_every_5_s_as_the_readme_says(tmp_path, monkeypatch):
    monkeypatch.setattr(watcher_mod, "volume_of", lambda path: Volume("smbfs", "/mnt/share"))
    w = watcher_mod.InboxWatcher(tmp_path / "inbox", settle_s=0.1, rescan_s=3600)
    w.start()
    try:
        [emitter] = w._observer.emitters
        assert w._observer.timeout == 5.0 and emitter.timeout == 5.0  # one listing of the share per 5 s
    finally:
        w.stop()
