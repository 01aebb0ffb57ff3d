"""A bounded set of input shapes on MPS: each ASR call's features padded up to a ladder of lengths.

MPSGraph compiles one graph per input shape and keeps it for the life of the process
(pytorch#181213); fed VAD segments of every length, a daemon's memory grows while `empty_cache()`
frees only the allocator's pool. So on MPS the features of each ASR call are padded in time up to
the next rung of a geometric ladder (32 frames of 60 ms, then x2^(1/4) rounded up to a multiple of
8: 17 rungs up to 30 s, at most 24% more frames, 9% on average), and the distinct shapes are
counted; the engine is recycled past `engine.max_shapes` as the backstop.

The padding goes after FunASR's frontend with the true lengths kept, as FunASR pads a batch itself,
so a model that masks by them gives the words and times of the unpadded call: SenseVoice does
(its encoder masks to the tensor's length; every region the same in tests/test_shape_buckets.py).
The Paraformer family (SeACo, plain) builds its encoder, predictor and decoder masks to the longest
length in the batch, so padded features fail there, and padding the waveform with silence instead
changed the words of every region of the tiny models: those run unpadded, their shapes counted (at
most one per 60 ms frame count up to model.max_segment_s, 500 at 30 s) and bounded by the recycle.
Imported only inside the engine process.
"""

from __future__ import annotations

import math
from typing import Any

BASE_FRAMES = 32  # ~1.9 s of 60 ms (LFR) frames: shorter calls all share one shape
STEPS_PER_DOUBLING = 4
MULTIPLE = 8


def bucket(frames: int) -> int:
    """The smallest rung of the ladder that holds `frames`."""
    step, rung = 0, BASE_FRAMES
    while rung < frames:
        step += 1
        rung = math.ceil(BASE_FRAMES * 2 ** (step / STEPS_PER_DOUBLING) / MULTIPLE) * MULTIPLE
    return rung


def ladder(max_frames: int) -> list[int]:
    """Every rung a call of up to `max_frames` frames can land on."""
    rungs = [bucket(1)]
    while rungs[-1] < max_frames:
        rungs.append(bucket(rungs[-1] + 1))
    return rungs


PADDABLE = frozenset({"SenseVoiceSmall"})  # models that mask padded features by the true lengths


class PaddedFrontend:
    """FunASR's frontend with its output features padded in time to a rung (pad=True; the lengths
    it returns stay the true ones), and every shape it hands on added to `seen`."""

    def __init__(self, frontend: Any, seen: set[tuple[int, ...]], pad: bool):
        self.frontend = frontend.frontend if isinstance(frontend, PaddedFrontend) else frontend
        self.seen = seen
        self.pad = pad

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import torch

        feats, lengths = self.frontend(*args, **kwargs)
        frames = feats.shape[1]
        if self.pad and bucket(frames) > frames:
            feats = torch.nn.functional.pad(feats, (0, 0, 0, bucket(frames) - frames))
        self.seen.add(tuple(feats.shape))
        return feats, lengths

    def __getattr__(self, name: str) -> Any:  # fs, frame_shift, lfr_n, cmvn_file...: the frontend's
        if name in ("frontend", "seen", "pad"):
            raise AttributeError(name)
        return getattr(self.frontend, name)
