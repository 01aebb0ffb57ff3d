"""The daemon SIGKILLed at each step of a job's life (a power cut, the OOM killer): the restarted
`asrd run` finishes the recording exactly once, with one complete output set and nothing partial.

Daemon-side steps are hit exactly by a crash point (asrd.faults: the process SIGKILLs itself there);
engine-side steps by holding the engine at the stage (test hooks) and SIGKILLing the daemon then.
"""

from __future__ import annotations

import json
import signal

import pytest

from asrd.faults import ENV as KILL_AT
from asrd.hashing import sha256_file
from asrd.ledger import Ledger
from tests.support.daemon import DaemonRun
from tests.support.recordings import distinct_wav

FORMATS = ["txt", "srt", "json"]
STEPS = {  # step -> (daemon env, engine hooks, the event after which the test kills the daemon)
    "after the claim": ({KILL_AT: "claimed"}, {}, None),
    "mid-decode": ({}, {"hang_on": "memo", "fault_stage": "decoding"}, "decoding"),
    "mid-inference": ({}, {"hang_on": "memo", "fault_stage": "recognising"}, "recognising"),
    "between two output files": ({KILL_AT: "between_outputs"}, {}, None),
    "after the outputs, before the ledger commit": ({KILL_AT: "before_commit"}, {}, None),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_a_daemon_killed_at_each_step_finishes_the_job_exactly_once(step, tmp_path, tiny_models, speech3):
    env, hooks, stage = STEPS[step]
    first = DaemonRun(tmp_path, env=env, hooks=hooks, outputs=FORMATS)
    first.inbox.mkdir(parents=True)
    memo = distinct_wav(speech3[0] / "speech3.wav", first.inbox / "memo.wav")
    with first:
        if stage is not None:
            first.wait_for(lambda e: e["event"] == "job.stage" and e.get("stage") == stage, 120)
            first.proc.send_signal(signal.SIGKILL)
        assert first.proc.wait(120) == -signal.SIGKILL
    assert first.count("job.done") == 0
    if step == "between two output files":  # killed with one output written: a partial set to finish
        assert sorted(p.name for p in first.inbox.iterdir() if not p.name.startswith(".")) == ["memo.txt", "memo.wav"]
    first.log_file.rename(first.log_file.with_name("killed.log"))

    with DaemonRun(tmp_path, outputs=FORMATS) as again:
        again.wait_done(1)
        assert again.stop()[0] == 0
    assert again.count("job.done") == 1
    beside = sorted(p.name for p in first.inbox.iterdir())
    assert beside == ["memo.json", "memo.srt", "memo.txt", "memo.wav"]  # one set: no "(2)", no temp file
    assert json.loads((first.inbox / "memo.json").read_text())["source"]["sha256"] == sha256_file(memo)
    assert all((first.inbox / f"memo.{fmt}").stat().st_size > 0 for fmt in FORMATS)
    [job] = Ledger(tmp_path / "state").recent(10)
    assert job.state == "done" and job.crashes == 1  # the death is counted against nothing else
