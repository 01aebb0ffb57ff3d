"""Bounded ASR input shapes (on MPS; forced on here, on the CPU): the ladder, the same words and
times padded as unpadded, the shapes counted, and the engine recycled past engine.max_shapes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from asrd.config import build_config, load_config
from asrd.engine import shapes
from asrd.engine.process import DONE, EngineProcess
from asrd.engine.protocol import JobRequest
from asrd.hashing import sha256_file
from tests.support.configs import model_section, write_config
from tests.support.tiny_models import speech_bursts


def test_the_ladder_is_small_and_pads_little():
    rungs = shapes.ladder(500)  # 30 s of 60 ms frames: model.max_segment_s' default
    assert len(rungs) == 17 and rungs[0] == 32 and rungs[-1] == 512
    assert all(shapes.bucket(n) in rungs and shapes.bucket(n) >= n for n in range(1, 501))
    assert max(shapes.bucket(n) / n for n in range(32, 501)) < 1.25
    assert [shapes.bucket(n) for n in (1, 32, 33, 41, 500)] == [32, 32, 40, 48, 512]


def regions_of_every_length(samples: np.ndarray) -> list[tuple[int, int]]:
    total_ms = len(samples) // 16
    return [(start, start + length) for start in (0, 700) for length in range(300, 9000, 370)
            if start + length <= total_ms]


def recognised(engine, samples, regions, bucket: bool):
    from asrd.engine.funasr import Timings

    engine.bucket_shapes = bucket
    return [(r.raw_text, r.timestamps) for r in engine.recognise(samples, regions, Timings())]


@pytest.mark.parametrize("preset, padded", [("sensevoice", True), ("paraformer-zh", False)])
def test_padded_calls_give_the_same_words_and_times(tiny_models, preset, padded):
    from asrd.engine.funasr import FunASREngine

    model = {**model_section(preset), "spk": str(tiny_models["campplus"])}  # speakers ask for token times
    engine = FunASREngine(build_config({"engine": {"threads": 1, "device": "cpu"},
                                        "model": {**model, "merge_length_s": 0}}, None))
    engine.load()
    samples = speech_bursts(n_bursts=6, f0s=(110.0, 210.0))[0]
    regions = regions_of_every_length(samples)
    plain = recognised(engine, samples, regions, bucket=False)
    assert engine.shapes == set()  # not counted unless bounding
    ours = recognised(engine, samples, regions, bucket=True)
    assert len(regions) == 48 and sum(bool(times) for _, times in plain) > 40
    assert ours == plain
    frames = {shape[1] for shape in engine.shapes}
    if padded:  # SenseVoice masks by the true lengths: 24 lengths (5 to 147 frames) ran as 10 rungs
        assert frames <= set(shapes.ladder(500)) and len(frames) == 10
    else:  # the Paraformer family's masks follow the longest length: unpadded, every length counted
        assert len(frames) == len({end - start for start, end in regions})


def clip_with_bursts(path, seconds: tuple[float, ...]) -> JobRequest:
    """One recording whose speech regions are `seconds` long (apart by silence)."""
    samples = np.concatenate([speech_bursts(n_bursts=1, burst_s=s)[0] for s in seconds])
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, 16000, subtype="PCM_16")
    return JobRequest(path.stem, str(path), path.stat().st_size, sha256_file(path), audio_s=len(samples) / 16000)


def serve(tmp_path, monkeypatch, hooks: dict, requests: list[JobRequest]) -> list[tuple[str, int, int | None]]:
    monkeypatch.setenv("ASRD_TEST_HOOKS", json.dumps(hooks))
    config = load_config(write_config(tmp_path, engine={"max_shapes": 2, "recycle_after_jobs": 0},
                                      model={"merge_length_s": 0}))
    engine = EngineProcess(config)
    served = []
    try:
        for request in requests:
            outcome = engine.run(request)
            assert outcome.status == DONE
            served.append((request.job_id, engine.info.shapes, engine.pid))
    finally:
        engine.stop()
    return served


def test_the_engine_is_recycled_past_max_shapes(tmp_path, tiny_models, monkeypatch):
    short = clip_with_bursts(tmp_path / "in" / "short.wav", (2.0, 2.0))
    varied = clip_with_bursts(tmp_path / "in" / "varied.wav", (2.0, 5.0, 9.0))  # more rungs
    served = serve(tmp_path / "on", monkeypatch, {"bucket_shapes": True}, [short, varied, short, short])
    (_, after_short, pid), (_, after_varied, gone), (_, again, new_pid), (_, still, same_pid) = served
    assert 1 <= after_short <= 2 < after_varied  # engine.max_shapes is 2: recycled after the second job
    assert pid is not None and gone is None and new_pid not in (None, pid)
    assert again == still == after_short and same_pid == new_pid  # a fresh count; no new shape: it stays
    unbounded = serve(tmp_path / "off", monkeypatch, {}, [short, varied, short])  # on the CPU: nothing counted
    assert [(shapes_, pid is not None) for _, shapes_, pid in unbounded] == [(0, True)] * 3
