"""asrd.engine.cif: SeACo/BiCif-Paraformer's integrate-and-fire loops on the host give FunASR's values
exactly (fires landing exactly on the threshold included), batched or not, and SeACo's inference
gives the same words and times with them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from funasr.models.bicif_paraformer import cif_predictor
from funasr.utils import timestamp_tools

from asrd.engine.cif import on_host_cif, on_host_fires

THRESHOLD = 1.0 - 1e-4  # what CifPredictorV3 passes to cif_wo_hidden (and 1.0 to cif)


def alphas_for(batch: int, frames: int, seed: int, exact: bool = False) -> torch.Tensor:
    """Weights per frame, ~0.3 each (a token every ~3 frames). `exact`: sums that land exactly on
    the threshold in float32 (quarters, and the threshold itself), where >= decides a fire."""
    generator = torch.Generator().manual_seed(seed)
    if exact:
        choices = torch.tensor([0.25, 0.5, 0.75, 0.0, np.float32(THRESHOLD), 1.0])
        return choices[torch.randint(0, len(choices), (batch, frames), generator=generator)]
    return torch.rand(batch, frames, generator=generator) * 0.6


CASES = [(1, 1, False), (1, 250, False), (1, 750, False), (3, 120, False), (1, 200, True), (4, 90, True)]


@pytest.mark.parametrize("batch,frames,exact", CASES)
@pytest.mark.parametrize("threshold", [THRESHOLD, 1.0])
def test_fires_are_funasrs(batch, frames, exact, threshold):
    alphas = alphas_for(batch, frames, frames + batch, exact)
    for theirs in (cif_predictor.cif_wo_hidden, timestamp_tools.cif_wo_hidden):  # two copies in FunASR
        expected = theirs(alphas.clone(), threshold)
        ours = on_host_fires(theirs)(alphas.clone(), threshold)
        assert ours.dtype == expected.dtype and ours.device == expected.device and torch.equal(ours, expected)


@pytest.mark.parametrize("batch,frames,exact", CASES)
@pytest.mark.parametrize("threshold", [1.0, 0.9])  # FunASR takes 1 off at a fire, whatever the threshold
def test_embeddings_and_fires_are_funasrs(batch, frames, exact, threshold):
    alphas = alphas_for(batch, frames, 7 * frames + batch, exact)
    hidden = torch.randn(batch, frames, 16, generator=torch.Generator().manual_seed(frames))
    embeds, fires = cif_predictor.cif(hidden, alphas.clone(), threshold)
    ours_embeds, ours_fires = on_host_cif(cif_predictor.cif)(hidden, alphas.clone(), threshold)
    assert torch.equal(ours_fires, fires)
    assert ours_embeds.shape == embeds.shape and torch.equal(ours_embeds, embeds)


def test_another_precision_is_left_to_funasr():
    calls = []
    original = cif_predictor.cif_wo_hidden

    def theirs(*args):
        calls.append(args)
        return original(*args)

    on_host_fires(theirs)(alphas_for(1, 20, 1).double(), THRESHOLD)
    on_host_cif(lambda *args: calls.append(args))(torch.zeros(1, 20, 4).half(), alphas_for(1, 20, 1).half(), 1.0)
    assert len(calls) == 2


def test_seaco_gives_the_same_words_and_times_with_the_loops_on_the_host(tiny_models, speech3, funasr_unpatched):
    from asrd import audio
    from asrd.config import build_config
    from asrd.engine import compat
    from asrd.engine.funasr import FunASREngine
    from tests.support.configs import model_section

    originals = cif_predictor.cif, cif_predictor.cif_wo_hidden, timestamp_tools.cif_wo_hidden
    engine = FunASREngine(build_config({"engine": {"device": "cpu", "threads": 1},
                                        "model": model_section("paraformer-zh")}, None))
    engine.load()
    assert type(engine.model.model.predictor).__name__ == "CifPredictorV3"
    patched = cif_predictor.cif, cif_predictor.cif_wo_hidden, timestamp_tools.cif_wo_hidden
    assert all(f.__wrapped__ is original for f, original in zip(patched, originals))
    samples = audio.decode(speech3[0] / "speech3.wav").samples
    clips = [torch.from_numpy(samples[:16000 * 5]), torch.from_numpy(samples)]

    def output() -> list:
        results = engine.model.inference(clips, model=engine.model.model, kwargs=engine.model.kwargs,
                                         batch_size=2, **engine._options())
        return [{k: v for k, v in r.items() if k != "key"} for r in results]

    ours = output()
    cif_predictor.cif, cif_predictor.cif_wo_hidden, timestamp_tools.cif_wo_hidden = originals
    theirs = output()
    assert all(len(r["timestamp"]) > 3 for r in ours) and ours == theirs
    assert "cif_loops_on_host" in compat.apply("cpu")
