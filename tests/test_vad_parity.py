"""asrd's fast FSMN-VAD against FunASR's own fsmn-vad, at run time: the same weights, the same
options, the same samples, and the segment lists must be equal to the millisecond.

The inputs are generated here (no other test uses them): the real-speech fixture alone, padded
with long silences, at low and clipping gain, under noise; noise, tones, clicks and silence with no
speech; 2 minutes of continuous speech (crossing FunASR's 60 s chunks, where its end-silence
schedule changes); very short files; files that end inside speech; and `max_single_segment_time`
small enough to split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asrd.engine.vad import FastVad

SR = 16000
SPEECH = sf.read(Path(__file__).parent / "fixtures" / "audio" / "speech3.wav", dtype="float32")[0]


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), np.float32)


def _noise(seconds: float, level: float, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * SR)) * level).astype(np.float32)


def _tone(seconds: float, freqs: tuple[float, ...], level: float = 0.2) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (level * sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs)).astype(np.float32)


def _melody() -> np.ndarray:
    """Music-like: notes of 0.25-0.6 s with harmonics, short gaps, a decaying envelope."""
    rng = np.random.default_rng(3)
    notes = []
    for _ in range(24):
        f = 220 * 2 ** (rng.integers(0, 12) / 12)
        n = _tone(rng.uniform(0.25, 0.6), (f, 2 * f, 3 * f), 0.3)
        notes += [n * np.exp(-np.arange(n.size) / (0.3 * SR)).astype(np.float32), _silence(rng.uniform(0, 0.15))]
    return np.concatenate(notes)


def _clicks(seconds: float, every_s: float, bed: np.ndarray | None = None) -> np.ndarray:
    out = _silence(seconds) if bed is None else bed.copy()
    out[:: int(every_s * SR)] += 0.9
    out[1:: int(every_s * SR)] -= 0.6
    return out


def _bursts() -> np.ndarray:
    """Noise with a syllable-like envelope (4 Hz) in 1-2 s bursts: speech-ish without speech."""
    rng = np.random.default_rng(5)
    parts = []
    for i in range(8):
        b = _noise(rng.uniform(1, 2), 0.1, seed=i)
        b *= (0.5 + 0.5 * np.sin(2 * np.pi * 4 * np.arange(b.size) / SR)).astype(np.float32)
        parts += [b, _silence(rng.uniform(0.2, 1.5))]
    return np.concatenate(parts)


def _gapped() -> np.ndarray:
    """The three utterances with 0.3 s gaps: shorter than the end silence, so they may merge."""
    spans = [(1.0, 3.59), (5.59, 8.32), (10.32, 13.1)]
    parts = []
    for a, b in spans:
        parts += [SPEECH[int(a * SR):int(b * SR)], _silence(0.3)]
    return np.concatenate(parts)


def _cat(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts).astype(np.float32)


LONG = np.tile(SPEECH, 9)  # 127 s, two chunk boundaries
CASES = {
    "speech": lambda: SPEECH,
    "speech_long_silences": lambda: _cat(_silence(5), SPEECH, _silence(20), SPEECH, _silence(8)),
    "speech_then_silence_70s": lambda: _cat(SPEECH, _silence(70), SPEECH),
    "speech_quiet": lambda: SPEECH * 0.03,
    "speech_clipped": lambda: np.clip(SPEECH * 6, -1, 1),
    "speech_dc_offset": lambda: SPEECH + 0.2,
    "speech_reversed": lambda: SPEECH[::-1].copy(),
    "speech_noise_low": lambda: SPEECH + _noise(SPEECH.size / SR, 0.005),
    "speech_noise_high": lambda: SPEECH + _noise(SPEECH.size / SR, 0.08, seed=1),
    "speech_gaps_300ms": _gapped,
    "speech_ends_in_speech": lambda: SPEECH[:int(2.5 * SR)],
    "speech_clicks": lambda: _clicks(SPEECH.size / SR, 0.37, SPEECH),
    "noise_0.001": lambda: _noise(10, 0.001),
    "noise_0.01": lambda: _noise(10, 0.01, seed=2),
    "noise_0.05": lambda: _noise(10, 0.05, seed=3),
    "noise_0.3": lambda: _noise(10, 0.3, seed=4),
    "brown_noise": lambda: (np.cumsum(_noise(10, 0.002, seed=6)) * 0.05).astype(np.float32),
    "noise_bursts": _bursts,
    "tone_440": lambda: _tone(8, (440,)),
    "chord": lambda: _cat(_silence(1), _tone(6, (261.6, 329.6, 392.0)), _silence(2)),
    "melody": _melody,
    "clicks": lambda: _clicks(10, 0.5),
    "silence_digital_10s": lambda: _silence(10),
    "silence_dither_70s": lambda: _noise(70, 1e-5, seed=7),
    "continuous_2min": lambda: LONG,
    "continuous_61s_ends_in_speech": lambda: np.tile(SPEECH, 5)[:61 * SR - 3000],
    "exactly_60s": lambda: np.tile(SPEECH, 5)[:60 * SR],
    "short_0.02s": lambda: SPEECH[int(1.5 * SR):int(1.52 * SR)],
    "short_0.1s": lambda: SPEECH[int(1.5 * SR):int(1.6 * SR)],
    "short_0.5s": lambda: SPEECH[int(1.2 * SR):int(1.7 * SR)],
    "short_1s": lambda: SPEECH[int(0.8 * SR):int(1.8 * SR)],
    "short_1s_silence": lambda: _silence(1),
}
SPLIT_CASES = {  # max_single_segment_time = 3000 ms
    "split_speech": lambda: SPEECH,
    "split_speech_noise": lambda: _cat(SPEECH, SPEECH) + _noise(2 * SPEECH.size / SR, 0.02, seed=8),
    "split_continuous_2min": lambda: LONG,
    "split_gaps_300ms": _gapped,
}


def _automodel(vad_dir: Path, **options):
    from funasr import AutoModel

    return AutoModel(model=str(vad_dir), disable_update=True, disable_pbar=True, device="cpu", **options)


@pytest.fixture(scope="module")
def default_vad(tiny_models):
    return _automodel(tiny_models["vad"])


@pytest.fixture(scope="module")
def split_vad(tiny_models):
    return _automodel(tiny_models["vad"], max_single_segment_time=3000)


def _funasr(model, samples: np.ndarray):
    import torch

    try:
        return model.generate(samples)[0]["value"]
    except ValueError as error:  # FunASR's own failure is part of its behaviour
        return repr(error)
    except ZeroDivisionError:  # generate's speed report on a file with no 10 ms frame: ask the VAD
        with torch.no_grad():
            return model.model.inference([samples], key=["x"], **model.kwargs)[0][0]["value"]


def _fast(model, samples: np.ndarray):
    try:
        return FastVad(model.model, model.kwargs)(samples)
    except ValueError as error:
        return repr(error)


@pytest.mark.parametrize("name", CASES)
def test_same_segments_as_funasr(default_vad, name):
    samples = np.ascontiguousarray(CASES[name](), dtype=np.float32)
    assert _fast(default_vad, samples) == _funasr(default_vad, samples)


@pytest.mark.parametrize("name", SPLIT_CASES)
def test_same_segments_with_max_single_segment_time(split_vad, name):
    samples = np.ascontiguousarray(SPLIT_CASES[name](), dtype=np.float32)
    expected = _funasr(split_vad, samples)
    assert any(end - start > 2900 for start, end in expected), "the cap should be reached"
    assert _fast(split_vad, samples) == expected


def test_the_suite_has_speech_to_find(default_vad):
    """The comparisons above would pass vacuously if FunASR found nothing: it finds the 3 utterances."""
    assert len(_funasr(default_vad, SPEECH)) == 3
    assert len(_funasr(default_vad, LONG)) > 9


def test_engine_vad_switch(tiny_models):
    """`engine.vad` picks the VAD in FunASREngine.detect_speech; both give the same regions."""
    from asrd.config import build_config
    from asrd.engine.funasr import FunASREngine
    from tests.support.configs import model_section

    samples = _cat(_silence(3), SPEECH, _silence(12), SPEECH[::-1])
    regions = {}
    for choice in ("fast", "funasr"):
        config = build_config({"engine": {"threads": 1, "device": "cpu", "vad": choice},
                               "model": model_section("sensevoice")}, None)
        engine = FunASREngine(config)
        engine.load()
        regions[choice] = engine.detect_speech(samples)
        assert (engine._fast_vad is not None) == (choice == "fast")
    assert regions["fast"] == regions["funasr"] and len(regions["fast"]) >= 4
