"""asrd.engine.compat's MPS step for CifPredictorV2 (its float64 cumsum computed on the CPU): applied
only on MPS, really on the CPU, the same words and times as FunASR's own; and why not float32. The
alignment step (every device) is tested in test_alignment.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asrd.config import build_config
from asrd.engine import compat
from asrd.engine.funasr import FunASREngine, Timings
from asrd.transcript import SourceInfo
from tests.support.configs import model_section
from tests.support.tiny_models import speech_bursts


@pytest.fixture
def cif(funasr_unpatched):
    """FunASR's cif_predictor module, unpatched; whatever a test's compat.apply patches in it (and
    elsewhere in FunASR) is undone after."""
    from funasr.models.paraformer import cif_predictor

    return cif_predictor


def test_applied_on_mps_only_and_once(cif):
    from funasr.models.sense_voice import model as sense_voice

    original, align = cif.cif_wo_hidden_v1, sense_voice.ctc_forced_align
    assert compat.apply("cpu") == ["ctc_alignment_numpy", "cif_loops_on_host"]  # every device: the same, faster
    assert cif.cif_wo_hidden_v1 is original and sense_voice.ctc_forced_align.__wrapped__ is align
    assert compat.apply("cuda") == ["ctc_alignment_numpy", "cif_loops_on_host"]
    assert cif.cif_wo_hidden_v1 is original and sense_voice.ctc_forced_align.__wrapped__ is align
    assert compat.apply("mps") == ["ctc_alignment_numpy", "cif_loops_on_host", "cif_float64_cumsum_on_cpu"]
    patched = cif.cif_wo_hidden_v1
    assert patched is not original and patched.__wrapped__ is original
    compat.apply("mps")  # an engine reloaded in the same process: not wrapped twice
    assert cif.cif_wo_hidden_v1 is patched and sense_voice.ctc_forced_align.__wrapped__ is align


class DeviceAlphas:
    """Stands for alphas on the compute device: `.cpu()` gives the values, `.device` is not the CPU."""

    device = torch.device("meta")

    def __init__(self, values: torch.Tensor):
        self.values = values

    def cpu(self) -> torch.Tensor:
        return self.values


def test_the_cumsum_runs_on_the_cpu_and_its_results_go_back(cif):
    seen = []

    def original(alphas, threshold, return_fire_idxs=False):
        seen.append((alphas.device.type, compat.in_host_section()))
        return cif.cif_wo_hidden_v1(alphas, threshold, return_fire_idxs=return_fire_idxs)

    alphas = torch.rand(2, 40)
    fires, idxs = compat.on_host(original)(DeviceAlphas(alphas), 1.0, return_fire_idxs=True)
    assert seen == [("cpu", True)] and not compat.in_host_section()
    assert fires.device.type == idxs.device.type == "meta" and fires.dtype == torch.float32
    assert compat.on_host(original)(DeviceAlphas(alphas), 1.0).device.type == "meta"


def test_words_times_and_speakers_do_not_change(tiny_models, cif):
    engine = FunASREngine(build_config({"engine": {"threads": 1, "device": "cpu"}, "model": {
        **model_section("paraformer-zh"), "asr": str(tiny_models["paraformer"])}}, None))
    engine.load()
    samples = speech_bursts(n_bursts=4, f0s=(110.0, 210.0))[0]
    source = SourceInfo("/x.wav", 1, "0" * 64)

    def job():
        results = engine.recognise(samples, engine.detect_speech(samples), Timings())
        segments = engine.transcribe(samples, source).segments
        return [(r.raw_text, r.timestamps) for r in results], [(s.text, s.start, s.end, s.speaker) for s in segments]

    theirs = job()
    calls = []
    compat.apply("mps")
    patched = cif.cif_wo_hidden_v1
    cif.cif_wo_hidden_v1 = lambda *a, **k: calls.append(a[0].shape) or patched(*a, **k)
    ours = job()
    assert calls and len(ours[0]) == 4 and all(text and times for text, times in ours[0])
    assert ours == theirs


def moved_fires(frames: int, trials: int = 400) -> int:
    """Segments of `frames` alphas (60 ms each; Beta(0.6, 1.6): ~4.5 tokens/s, as real Paraformer)
    whose fires move when the prefix sums are accumulated in float32, one add after another (numpy;
    torch's CPU cumsum accumulates float32 in double, so it cannot stand for the GPU's)."""
    rng = np.random.default_rng(frames)
    moved = 0
    for _ in range(trials):
        alphas = rng.beta(0.6, 1.6, frames).astype(np.float32)
        exact = np.floor(np.cumsum(alphas, dtype=np.float64).astype(np.float32))  # FunASR's
        single = np.floor(np.add.accumulate(alphas, dtype=np.float32))
        moved += not np.array_equal(np.diff(exact, prepend=0) > 0, np.diff(single, prepend=0) > 0)
    return moved


def test_float32_prefix_sums_are_exact_only_for_short_segments():
    """Why the step keeps float64 on the CPU: float32 moves a fire by a frame in 3 of 400 segments
    of 30 s (model.max_segment_s' default), 25 of 60 s and 68 of 120 s; none up to 20 s."""
    assert [moved_fires(n) for n in (50, 167, 333)] == [0, 0, 0]  # 3 s, 10 s, 20 s
    assert 0 < moved_fires(500) < moved_fires(1000) < moved_fires(2000)  # 30 s, 60 s, 120 s


def test_funasrs_own_functions_come_back_for_a_block_and_asrds_after_it(cif):
    """The bench's FunASR baselines run FunASR's own per-frame loops, in the process where asrd's
    engine put its drop-ins."""
    from funasr.models.bicif_paraformer import cif_predictor as bicif
    from funasr.models.sense_voice import model as sense_voice

    own = sense_voice.ctc_forced_align, bicif.cif, bicif.cif_wo_hidden, cif.cif_wo_hidden_v1
    compat.apply("mps")
    drop_ins = sense_voice.ctc_forced_align, bicif.cif, bicif.cif_wo_hidden, cif.cif_wo_hidden_v1
    assert all(d.__wrapped__ is o for d, o in zip(drop_ins, own))
    with compat.funasr_own():
        assert (sense_voice.ctc_forced_align, bicif.cif, bicif.cif_wo_hidden, cif.cif_wo_hidden_v1) == own
    assert (sense_voice.ctc_forced_align, bicif.cif, bicif.cif_wo_hidden, cif.cif_wo_hidden_v1) == drop_ins
