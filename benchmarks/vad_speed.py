"""FunASR's FSMN-VAD against asrd's fast VAD on the same long file, in one process.

The file is the committed 3-utterance clip followed by 3 s of silence, repeated to `--minutes`.
For each thread count, runs alternate FunASR / fast; the median of `--runs` is reported for the
whole VAD call and for the decision logic alone (FunASR: DetectCommonFrames + DetectLastFrames;
fast: `asrd.engine.vad.decide`), plus the fast VAD's other stages. Segments must be identical.

    .venv/bin/python benchmarks/vad_speed.py --minutes 10 --threads 2 1 --runs 3 --out vad.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class Stopwatch:
    """Adds up the time spent inside wrapped callables."""

    def __init__(self):
        self.total: dict[str, float] = {}

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.total[name] = self.total.get(name, 0.0) + time.perf_counter() - started
        return timed

    def hook_module(self, name: str, module) -> None:
        starts: list[float] = []
        module.register_forward_pre_hook(lambda *_: starts.append(time.perf_counter()))

        def done(*_):
            self.total[name] = self.total.get(name, 0.0) + time.perf_counter() - starts.pop()
        module.register_forward_hook(done)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import soundfile as sf
    import torch
    from funasr import AutoModel

    from asrd.engine import vad
    from tests.support.tiny_models import vad_model_dir

    clip = sf.read(ROOT / "tests" / "fixtures" / "audio" / "speech3.wav", dtype="float32")[0]
    unit = np.concatenate([clip, np.zeros(3 * 16000, np.float32)])
    n = int(args.minutes * 60 * 16000)
    audio = np.tile(unit, n // unit.size + 1)[:n]

    model = AutoModel(model=str(vad_model_dir()), disable_update=True, disable_pbar=True, device="cpu")
    watch = Stopwatch()
    fsmn = model.model
    fsmn.DetectCommonFrames = watch.wrap("funasr_decide", fsmn.DetectCommonFrames)
    fsmn.DetectLastFrames = watch.wrap("funasr_decide", fsmn.DetectLastFrames)
    watch.hook_module("encoder", fsmn.encoder)
    vad.decide = watch.wrap("fast_decide", vad.decide)
    vad._Features._fbank = watch.wrap("fast_fbank", vad._Features._fbank)
    vad._Features.lfr_cmvn = watch.wrap("fast_features", vad._Features.lfr_cmvn)  # includes fbank
    vad._decibel = watch.wrap("fast_decibel", vad._decibel)
    vad._frame_states = watch.wrap("fast_states", vad._frame_states)
    fast = vad.FastVad(fsmn, model.kwargs)

    report: dict = {"audio_s": n / 16000, "runs": args.runs, "threads": {}}
    for threads in args.threads:
        torch.set_num_threads(threads)
        model.generate(audio[: 16000 * 20]), fast(audio[: 16000 * 20])  # warm
        rows: dict[str, list[float]] = {}
        for _ in range(args.runs):
            for side in ("funasr", "fast"):
                watch.total.clear()
                started = time.perf_counter()
                segments = model.generate(audio)[0]["value"] if side == "funasr" else fast(audio)
                rows.setdefault(f"{side}_total", []).append(time.perf_counter() - started)
                for name, value in watch.total.items():
                    key = f"{side}_encoder" if name == "encoder" else name
                    rows.setdefault(key, []).append(value)
                report.setdefault("segments", {})[side] = segments
        assert report["segments"]["funasr"] == report["segments"]["fast"], "segments differ"
        med = {k: round(statistics.median(v), 4) for k, v in rows.items()}
        med["whole_ratio"] = round(med["fast_total"] / med["funasr_total"], 3)
        med["decide_speedup"] = round(med["funasr_decide"] / med["fast_decide"], 1)
        report["threads"][threads] = {"median_s": med, "all_s": {k: [round(x, 4) for x in v] for k, v in rows.items()}}
        print(f"threads={threads}: FunASR {med['funasr_total']:.2f} s (decisions {med['funasr_decide']:.3f}, "
              f"network {med['funasr_encoder']:.2f}) | fast {med['fast_total']:.2f} s (decisions "
              f"{med['fast_decide']:.4f}, network {med['fast_encoder']:.2f}, fbank {med['fast_fbank']:.2f}, "
              f"lfr+cmvn {med['fast_features'] - med['fast_fbank']:.2f}, decibel {med['fast_decibel']:.2f}, "
              f"states {med['fast_states']:.3f}) | whole {med['whole_ratio']}x, decisions "
              f"{med['decide_speedup']}x faster")
    report["regions"] = len(report.pop("segments")["fast"])
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
