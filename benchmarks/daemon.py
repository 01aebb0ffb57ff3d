"""What the daemon costs around the engine: a real `asrd run` over a backlog and over single drops.

- overhead: a backlog of --backlog distinct recordings already in the inbox; the daemon's wall time
  from the first `job.done` to the last (so the engine's start and model load, paid once, are out),
  minus the engine's own compute for those jobs (each job's `processing_s`), as a share of it. What is left is asrd's: hashing, the ledger, the
  watcher, messages to and from the engine, writing the outputs, status.
- pickup: --drops files dropped one at a time into an idle daemon; seconds from the file being
  closed to `job.started` (the stability gate holds a file for `watch.settle_s` first, on purpose).
- soak: --soak jobs through one engine (recycling off); the engine's RSS after job 50 and after the
  last, from each `job.done` event.

Every recording is the committed 3-utterance clip with a different tail of silence (distinct
content, so nothing is a copy). Models: the tiny test models (compute is small, so the overhead share
is a harsh upper bound) or --full-size SenseVoiceSmall with random weights.

    .venv/bin/python benchmarks/daemon.py --backlog 100 --drops 10 --soak 500 --out daemon.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.daemon import DaemonRun  # noqa: E402

CLIP = ROOT / "tests" / "fixtures" / "audio" / "speech3.wav"


def recording(path: Path, n: int) -> None:
    """The clip plus n ms of silence: distinct content of (nearly) the same length for every n."""
    samples, rate = soundfile.read(CLIP, dtype="float32")
    soundfile.write(path, np.concatenate([samples, np.zeros(16 * (n + 1), np.float32)]), rate, subtype="PCM_16")


def done_events(run: DaemonRun) -> list[dict]:
    return [e for e in run.events() if e["event"] == "job.done"]


def backlog(root: Path, files: int, model: dict, engine: dict) -> dict:
    inbox = root / "inbox"
    inbox.mkdir(parents=True)
    for n in range(files):
        recording(inbox / f"r{n:04d}.wav", n)
    run = DaemonRun(root, model=model, engine={**engine, "recycle_after_jobs": 0, "max_memory_mb": 0})
    with run:
        done = run.wait_done(files, timeout=60 * 60)
        events = run.events()
    done = sorted(done, key=_ts)
    wall = _ts(done[-1]) - _ts(done[0])
    compute = sum(e["processing_s"] for e in done[1:])
    jobs = len(done) - 1
    return {"files": files, "jobs_timed": jobs, "wall_s": round(wall, 2), "engine_compute_s": round(compute, 2),
            "overhead_s": round(wall - compute, 2), "overhead_pct": round(100 * (wall - compute) / compute, 2),
            "per_job_overhead_ms": round(1000 * (wall - compute) / jobs, 1),
            "load_and_first_job_s": round(_ts(done[0]) - min(_ts(e) for e in events if e["event"] == "job.started"), 2)}


def pickup(root: Path, drops: int, settle_s: float, model: dict, engine: dict) -> dict:
    run = DaemonRun(root, model=model, watch={"settle_s": settle_s, "rescan_s": 60}, engine=engine)
    latencies = []
    with run:
        for n in range(drops):
            staged = root / f"staged{n}.wav"
            recording(staged, 10_000 + n)
            staged.rename(run.inbox / staged.name)  # closed and complete at this instant
            closed = time.time()
            event = run.wait_for(lambda e, name=staged.name: e["event"] == "job.started"
                                 and e.get("file", "").endswith(name), 120)[0]
            latencies.append(_ts(event) - closed)
            run.wait_done(n + 1)
    return {"drops": drops, "settle_s": settle_s, "pickup_s": [round(x, 3) for x in latencies],
            "median_s": round(statistics.median(latencies), 3), "max_s": round(max(latencies), 3),
            "target_s": settle_s + 1}


def soak(root: Path, jobs: int, model: dict, engine: dict) -> dict:
    inbox = root / "inbox"
    inbox.mkdir(parents=True)
    for n in range(jobs):
        recording(inbox / f"s{n:04d}.wav", 20_000 + n)
    run = DaemonRun(root, model=model, engine={**engine, "recycle_after_jobs": 0, "max_memory_mb": 0})
    with run:
        done = run.wait_done(jobs, timeout=3 * 60 * 60)
    rss = [e["memory"].get("rss_mb") for e in sorted(done, key=_ts)]
    at_50, last = rss[min(49, len(rss) - 1)], rss[-1]
    return {"jobs": jobs, "rss_mb_after_50": at_50, "rss_mb_after_last": last,
            "growth_pct": round(100 * (last - at_50) / at_50, 2), "rss_mb_every_50": rss[49::50]}


def _ts(event: dict) -> float:
    from datetime import datetime

    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=100)
    parser.add_argument("--drops", type=int, default=10)
    parser.add_argument("--settle", type=float, default=2.0)
    parser.add_argument("--soak", type=int, default=500)
    parser.add_argument("--full-size", action="store_true", help="SenseVoiceSmall-sized random model (slow on a CPU)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "mps", "auto"], help="engine.device")
    parser.add_argument("--threads", type=int, default=2, help="engine.threads")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from tests.support.configs import model_section

    model = model_section("sensevoice")
    if args.full_size:
        from benchmarks.run import full_size_sensevoice

        model["asr"] = str(full_size_sensevoice(Path(tempfile.gettempdir()) / "asrd-bench-models"))
    engine = {"device": args.device, "threads": args.threads}
    report: dict = {"models": "full-size SenseVoiceSmall (random weights)" if args.full_size else "tiny test models",
                    "engine": engine}
    with tempfile.TemporaryDirectory() as tmp:
        if args.backlog:
            report["backlog"] = backlog(Path(tmp) / "backlog", args.backlog, model, engine)
            print(report["backlog"], file=sys.stderr, flush=True)
        if args.drops:
            report["pickup"] = pickup(Path(tmp) / "pickup", args.drops, args.settle, model, engine)
            print(report["pickup"], file=sys.stderr, flush=True)
        if args.soak:
            report["soak"] = soak(Path(tmp) / "soak", args.soak, model, engine)
            print(report["soak"], file=sys.stderr, flush=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
