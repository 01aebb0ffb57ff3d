"""asrd.engine.alignment: SenseVoice's CTC forced alignment in numpy gives FunASR's path exactly,
ties included, and its drop-in leaves the path on the host."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from funasr.models.sense_voice.utils.ctc_alignment import ctc_forced_align

from asrd.engine.alignment import ctc_forced_align_on_host, forced_align, label_states


def emissions(frames: int, classes: int, seed: int, levels: int | None = None) -> torch.Tensor:
    """Log-probabilities of one utterance; `levels` rounds them to a few values, so that the Viterbi
    meets equal scores (where argmax's choice among equals decides the path)."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(1, frames, classes, generator=generator)
    if levels:
        logits = (logits * levels).round() / levels
    return logits.log_softmax(-1)


CASES = [(frames, tokens, levels, seed) for seed, (frames, tokens, levels) in enumerate([
    (1, 1, None), (2, 1, None), (5, 2, None), (40, 6, None), (250, 40, None), (500, 90, None), (500, 160, None),
    (60, 30, None),  # as many tokens as fit: every state is needed
    (40, 6, 1), (250, 40, 1), (250, 40, 2), (120, 20, 1), (300, 80, 3)])]


@pytest.mark.parametrize("frames,tokens,levels,seed", CASES)
def test_the_path_is_funasrs(frames, tokens, levels, seed):
    log_probs = emissions(frames, 60, seed, levels)
    generator = torch.Generator().manual_seed(100 + seed)
    targets = torch.randint(1, 60, (1, tokens), generator=generator)
    if tokens > 3:
        targets[0, 2] = targets[0, 1]  # a repeated token: its states may not be skipped
    lengths = torch.tensor(frames)  # 0-d, as SenseVoice passes it
    target_lengths = torch.tensor([tokens])
    theirs = ctc_forced_align(log_probs, targets.clone(), lengths, target_lengths)
    ours = ctc_forced_align_on_host(ctc_forced_align)(log_probs, targets.clone(), lengths, target_lengths)
    assert isinstance(ours, np.ndarray) and ours.dtype == np.int64 and ours.shape == theirs.shape
    assert np.array_equal(ours, theirs.numpy())


def test_ignored_ids_become_blanks_as_in_funasr():
    log_probs = emissions(80, 30, 7)
    targets = torch.tensor([[5, -1, 9, 9, 12]])
    theirs = ctc_forced_align(log_probs, targets.clone(), torch.tensor(80), torch.tensor([5]))
    states = label_states(targets[0].numpy())
    assert states.tolist() == [0, 5, 0, 0, 0, 9, 0, 9, 0, 12, 0]
    assert np.array_equal(forced_align(log_probs[0].numpy()[:, states], states, 80, 5), theirs[0].numpy())


def test_a_batch_of_utterances_is_left_to_funasr():
    calls = []

    def original(*args):
        calls.append(args)
        return ctc_forced_align(*args)

    log_probs = emissions(30, 20, 3).repeat(2, 1, 1)
    targets = torch.tensor([[3, 4], [5, 6]])
    path = ctc_forced_align_on_host(original)(log_probs, targets, torch.tensor([30, 30]), torch.tensor([2, 2]))
    assert len(calls) == 1 and path.shape == (2, 30)


def test_sensevoices_timestamps_are_the_same_with_asrds_alignment_and_host_lengths(tiny_models, speech3,
                                                                                   funasr_unpatched, monkeypatch):
    """Through SenseVoice's own inference (which slices and walks the path, and reads the encoder's
    lengths for every token): the same text, token times and words as with FunASR's alignment and
    its lengths on the model's device, over the whole 14 s clip in one call."""
    from funasr.models.sense_voice import model as sense_voice

    from asrd import audio
    from asrd.config import build_config
    from asrd.engine.funasr import FunASREngine
    from tests.support.configs import model_section

    funasrs = sense_voice.ctc_forced_align  # FunASR's own; load() patches it
    engine = FunASREngine(build_config({"engine": {"device": "cpu", "threads": 1},
                                        "model": model_section("sensevoice")}, None))
    engine.load()
    assert sense_voice.ctc_forced_align.__wrapped__ is funasrs
    clip = torch.from_numpy(audio.decode(speech3[0] / "speech3.wav").samples)

    def output() -> dict:
        [result] = engine.model.inference([clip], model=engine.model.model, kwargs=engine.model.kwargs,
                                          batch_size=1, **{**engine._options(), "output_timestamp": True})
        return {k: v for k, v in result.items() if k != "key"}  # a random name per call

    ours = output()
    assert getattr(engine.model.model.encoder.forward, "asrd_on_host", False)  # lengths read on the host too
    monkeypatch.setattr(sense_voice, "ctc_forced_align", funasrs)
    monkeypatch.delattr(engine.model.model.encoder, "forward")  # the class's own forward again
    assert not getattr(engine.model.model.encoder.forward, "asrd_on_host", False)
    theirs = output()
    assert len(ours["timestamp"]) > 10 and ours == theirs


def test_the_encoders_lengths_come_back_on_the_host_and_only_sensevoice_gets_them():
    """What SenseVoice's inference reads per token is a CPU tensor (on a GPU every read was a sync);
    a model that only embeds SenseVoice's encoder (Fun-ASR-Nano) keeps its own; applied once."""
    from asrd.engine import compat

    seen = []

    class Lengths:
        def cpu(self):
            seen.append("cpu")
            return "on the host"

    class Encoder:
        def forward(self, speech, speech_lengths):
            return speech * 2, Lengths()

    class SenseVoiceSmall:
        encoder = Encoder()

    class FunASRNano:
        encoder = Encoder()

    model, nano = SenseVoiceSmall(), FunASRNano()
    assert compat.apply_to_model(model) == ["sensevoice_lengths_on_host"]
    assert compat.apply_to_model(model) == ["sensevoice_lengths_on_host"]  # reloaded: not wrapped twice
    assert model.encoder.forward(torch.ones(2), None)[1] == "on the host" and seen == ["cpu"]
    assert model.encoder.forward.__wrapped__.__func__ is Encoder.forward
    assert compat.apply_to_model(nano) == [] and not getattr(nano.encoder.forward, "asrd_on_host", False)
