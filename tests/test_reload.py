"""SIGHUP reloads the config of a running `asrd run`; a broken edit is said and the running config kept."""

from __future__ import annotations

import signal

import yaml

from tests.support.daemon import DaemonRun
from tests.support.recordings import distinct_wav


def test_sighup_applies_new_outputs_and_a_broken_edit_keeps_the_running_config(tmp_path, tiny_models, speech3):
    daemon = DaemonRun(tmp_path)
    first = distinct_wav(speech3[0] / "speech3.wav", daemon.inbox / "first.wav")
    with daemon:
        daemon.wait_done(1)
        data = yaml.safe_load(daemon.config.read_text())
        daemon.config.write_text(yaml.safe_dump({**data, "outputs": ["txt", "vtt"]}, sort_keys=False))
        daemon.proc.send_signal(signal.SIGHUP)
        [reloaded] = daemon.wait_for(lambda e: e["event"] == "config.reloaded")
        assert reloaded["changed"] == ["outputs"]
        second = distinct_wav(speech3[0] / "speech3.wav", daemon.inbox / "second.wav")
        daemon.wait_done(2)
        daemon.config.write_text("outputs: [pdf]\n")  # a broken edit
        daemon.proc.send_signal(signal.SIGHUP)
        [invalid] = daemon.wait_for(lambda e: e["event"] == "config.invalid")
        assert "outputs" in invalid["problems"][0]
        third = distinct_wav(speech3[0] / "speech3.wav", daemon.inbox / "third.wav")
        daemon.wait_done(3)
        assert daemon.proc.poll() is None
        daemon.stop()
    # each SIGHUP reads the file once: not again at every turn of the loop (the log would fill with it)
    assert daemon.count("config.reloaded") == 1 and daemon.count("config.invalid") == 1
    assert sorted(p.suffix for p in first.parent.glob("first.*")) == [".json", ".srt", ".txt", ".wav"]
    assert sorted(p.suffix for p in second.parent.glob("second.*")) == [".txt", ".vtt", ".wav"]
    assert sorted(p.suffix for p in third.parent.glob("third.*")) == [".txt", ".vtt", ".wav"]
