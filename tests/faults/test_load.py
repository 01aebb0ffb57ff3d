"""Load on a real `asrd run`: a burst of 500 recordings while the engine recycles every 50 jobs and
is SIGKILLed every 100; a backlog of 1000 at start; a 2-hour recording with flat memory. Nothing
lost, nothing twice. Figures are printed (pytest -s) and kept in RELIABILITY.md; none is asserted as
a speed target (speed lives in benchmarks/)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asrd.ledger import Ledger
from tests.support.daemon import DaemonRun
from tests.support.recordings import distinct_wav

pytestmark = pytest.mark.slow


def short_clip(speech3, folder: Path) -> Path:
    """The clip's first sentence (~3 s, one speech region): short jobs, so 500 fit in CI."""
    samples, rate = sf.read(speech3[0] / "speech3.wav", dtype="int16")
    path = folder / "short.wav"
    sf.write(path, samples[int(0.8 * rate):int(3.8 * rate)], rate, subtype="PCM_16")
    return path


def engine_pid(daemon: DaemonRun) -> int | None:
    ready = [e for e in daemon.events() if e["event"] == "engine.ready"]
    return ready[-1]["pid"] if ready else None


def test_a_burst_of_500_while_the_engine_recycles_and_is_killed(tmp_path, tiny_models, speech3):
    staging = tmp_path / "staging"
    staging.mkdir()
    clip = short_clip(speech3, tmp_path)
    names = [f"burst {n:03d}.wav" for n in range(500)]
    for name in names:
        distinct_wav(clip, staging / name)
    daemon = DaemonRun(tmp_path, engine={"recycle_after_jobs": 50, "retry_delay_s": 0.2, "max_crashes": 3},
                       outputs=["txt", "json"])
    daemon.inbox.mkdir(parents=True)
    kills = 0
    with daemon:
        for name in names:  # "copied in at once": each arrives complete, all within a moment
            os.rename(staging / name, daemon.inbox / name)
        last_copy = time.time()
        while (done := daemon.count("job.done")) < 500:
            if done >= 100 * (kills + 1) and kills < 4:
                pid = engine_pid(daemon)
                try:
                    if pid:
                        os.kill(pid, signal.SIGKILL)  # mid-job or between jobs: either must lose nothing
                        kills += 1
                except ProcessLookupError:
                    pass  # that engine was just recycled: kill its successor at the next look
            assert daemon.proc.poll() is None, daemon.proc.stderr.read()[-2000:]
            assert time.time() - last_copy < 40 * 60, f"{done} done after 40 min"
            time.sleep(0.5)
        burst_s = time.time() - last_copy
        assert daemon.stop()[0] == 0
    events = daemon.events()
    done_files = Counter(e["file"] for e in events if e["event"] == "job.done")
    assert len(done_files) == 500 and set(done_files.values()) == {1}  # every one, none twice
    assert sum(1 for e in events if e["event"] == "engine.recycled") >= 8
    assert kills == 4
    jobs = Ledger(tmp_path / "state").recent(1000)
    assert len(jobs) == 500 and {j.state for j in jobs} == {"done"}
    for name in names:
        stem = Path(name).stem
        beside = sorted(p.name for p in daemon.inbox.glob(f"{stem}*"))
        assert beside == [f"{stem}.json", f"{stem}.txt", name]
    print(f"\nburst: 500 recordings, last copy to last transcript {burst_s:.1f} s, {kills} engine kills, "
          f"{sum(1 for e in events if e['event'] == 'engine.recycled')} recycles")


def test_a_backlog_of_1000_is_queued_once_each_without_an_event_storm(tmp_path, tiny_models, speech3):
    clip = short_clip(speech3, tmp_path)
    daemon = DaemonRun(tmp_path, log_level="debug")
    for n in range(1000):
        distinct_wav(clip, daemon.inbox / f"sub{n % 10}" / f"old {n:04d}.wav")
    with daemon:
        started = time.time()
        daemon.wait_for(lambda e: e["event"] == "job.queued", 600, n=1000)
        scan_s = time.time() - started
        time.sleep(2 * 2)  # two more rescans (rescan_s is 2 here): they must add nothing
        assert daemon.stop()[0] == 0
    events = daemon.events()
    counts = Counter(e["event"] for e in events)
    queued = Counter(e["file"] for e in events if e["event"] == "job.queued")
    assert len(queued) == 1000 and set(queued.values()) == {1}
    assert counts["file.seen"] == 1000  # one line per file, not one per rescan or event
    assert counts["file.waiting"] == 0
    print(f"\nbacklog: 1000 recordings queued {scan_s:.1f} s after the daemon started; "
          f"{len(events)} log lines in all")


def test_a_two_hour_recording_with_flat_memory_and_progress_throughout(tmp_path, tiny_models, speech3):
    samples, rate = sf.read(speech3[0] / "speech3.wav", dtype="int16")
    repeats = int(2 * 3600 * rate / len(samples)) + 1
    daemon = DaemonRun(tmp_path, engine={"max_memory_mb": 0})
    daemon.inbox.mkdir(parents=True)
    long = tmp_path / "long.wav"
    with sf.SoundFile(long, "w", rate, 1, "PCM_16") as out:  # written in pieces: no 2 h array here
        for _ in range(repeats):
            out.write(samples)
    with daemon:
        os.rename(long, daemon.inbox / "long.wav")
        [done] = daemon.wait_done(1, timeout=40 * 60)
        assert daemon.stop()[0] == 0
    progress = [e["fraction"] for e in daemon.events() if e["event"] == "job.progress"]
    assert done["audio_s"] >= 7200 and done["segments"] > 1000
    assert len(progress) >= 20 and progress == sorted(progress) and progress[-1] == 1.0
    gaps = np.diff([0.0, *progress])
    assert gaps.max() < 0.2  # progress throughout, not at the end
    peak = done["memory"]["peak_rss_mb"]
    print(f"\ntwo hours: {done['audio_s']:.0f} s of audio in {done['processing_s']:.0f} s, engine peak RSS "
          f"{peak:.0f} MB, {len(progress)} progress events; {json.dumps(done['memory'])}")
    audio_mb = done["audio_s"] * 16000 * 4 / 2**20  # the decoded samples, float32 (440 MB)
    assert peak < done["memory"]["rss_mb"] + 2 * audio_mb  # was models + 5x: decode held it twice, RMS in float64
