"""Compatibility steps that let FunASR's models run on an Apple GPU (MPS), applied at load.

MPS has no float64 (pytorch#122602, a known limitation; PYTORCH_ENABLE_MPS_FALLBACK covers missing
ops, not dtypes). FunASR's `CifPredictorV2` (plain Paraformer models such as paraformer-en, which
users can set in `model.asr`) fires its integrate-and-fire with
`torch.cumsum(alphas, dim=1, dtype=torch.float64)` on the model's device (`cif_wo_hidden_v1`, called
by `cif_v1`); on MPS that raises. The step here runs that one function on the CPU: `alphas` is
(batch, frames at 60 ms), a few hundred floats per call, so the copy is negligible next to the
encoder, and the fires are FunASR's own, bit for bit. Computing in float32 on the GPU instead would
move fires once prefix sums grow (tests/test_mps_compat.py measures where). SeACo's
`CifPredictorV3`, SenseVoice, CT-punc and CAM++ need no step (tests/test_mps_rules.py).

On every device, SenseVoice's forced alignment, which gives the token timestamps that merged calls
and speakers need, is asrd's numpy pass with the same path, left on the CPU (asrd.engine.alignment):
FunASR's is a per-frame loop of torch ops, launch-bound on a GPU and slow on the CPU too. The same
holds for SeACo/BiCif-Paraformer's integrate-and-fire loops (asrd.engine.cif). And SenseVoice's
encoder hands its output lengths back on the CPU (`apply_to_model`), where its `inference` reads them.
Imported only inside the engine process.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

_local = threading.local()


@contextlib.contextmanager
def host_section() -> Iterator[None]:
    """Marks code whose tensors are on the CPU by construction, whatever the model's device; the
    MPS-rules test mode (tests/support/mps_rules.py) reads it, as a CPU-only run cannot tell the
    host from the compute device."""
    depth = getattr(_local, "depth", 0)
    _local.depth = depth + 1
    try:
        yield
    finally:
        _local.depth = depth


def in_host_section() -> bool:
    return getattr(_local, "depth", 0) > 0


def on_host(original: Callable[..., Any]) -> Callable[..., Any]:
    """`cif_wo_hidden_v1(alphas, threshold, return_fire_idxs=False)` computed on the CPU, its
    results moved back to the device of `alphas`."""

    @functools.wraps(original)
    def cif_wo_hidden_v1(alphas: Any, threshold: float, return_fire_idxs: bool = False) -> Any:
        with host_section():
            result = original(alphas.cpu(), threshold, return_fire_idxs=return_fire_idxs)
        if return_fire_idxs:
            return tuple(r.to(alphas.device) for r in result)
        return result.to(alphas.device)

    cif_wo_hidden_v1.asrd_on_host = True  # type: ignore[attr-defined]
    return cif_wo_hidden_v1


EVERY_DEVICE = None


def _steps() -> list[tuple[str, list[tuple[Any, str, Callable[..., Any]]], set[str] | None]]:
    """Each step: its name, the places in FunASR it replaces a function at (module, name, drop-in
    maker; FunASR looks them up there at call time), and the devices that need it (None: all)."""
    from funasr.models.bicif_paraformer import cif_predictor as bicif
    from funasr.models.paraformer import cif_predictor
    from funasr.models.sense_voice import model as sense_voice
    from funasr.utils import timestamp_tools

    from asrd.engine.alignment import ctc_forced_align_on_host
    from asrd.engine.cif import on_host_cif, on_host_fires

    return [("ctc_alignment_numpy", [(sense_voice, "ctc_forced_align", ctc_forced_align_on_host)], EVERY_DEVICE),
            ("cif_loops_on_host", [(bicif, "cif", on_host_cif), (bicif, "cif_wo_hidden", on_host_fires),
                                   (timestamp_tools, "cif_wo_hidden", on_host_fires)], EVERY_DEVICE),
            ("cif_float64_cumsum_on_cpu", [(cif_predictor, "cif_wo_hidden_v1", on_host)], {"mps"})]


def apply(device: str) -> list[str]:
    """Apply the steps `device` needs (idempotent); returns their names for the log."""
    applied = []
    for step, places, devices in _steps():
        if devices is EVERY_DEVICE or device in devices:
            for module, name, drop_in in places:
                if not getattr(getattr(module, name), "asrd_on_host", False):
                    setattr(module, name, drop_in(getattr(module, name)))
            applied.append(step)
    return applied


def lengths_on_host(forward: Callable[..., Any]) -> Callable[..., Any]:
    """SenseVoice's encoder `forward` with its output lengths handed back on the CPU. SenseVoice's
    `inference` reads them as numbers: once per utterance, and with `output_timestamp` (merged calls,
    speakers) for every token (`ts_max = encoder_out_lens[i] - 4` and a min() against it), each read
    a few kernel launches and a device sync on a GPU: 28 ms of a 14 s call's 95 ms on an H100
    (benchmarks/README.md). On the CPU they are the same numbers, read for nothing."""

    @functools.wraps(forward)
    def host_lengths(*args: Any, **kwargs: Any) -> Any:
        out, lengths = forward(*args, **kwargs)
        return out, lengths.cpu()

    host_lengths.asrd_on_host = True  # type: ignore[attr-defined]
    return host_lengths


def apply_to_model(model: Any) -> list[str]:
    """Steps on asrd's own loaded ASR model (idempotent; the bench's FunASR baselines load their own
    instances, so they keep FunASR's code). Only SenseVoiceSmall: other models that embed its encoder
    (Fun-ASR-Nano's audio encoder) may use the lengths on the device."""
    if type(model).__name__ != "SenseVoiceSmall":
        return []
    if not getattr(model.encoder.forward, "asrd_on_host", False):
        model.encoder.forward = lengths_on_host(model.encoder.forward)
    return ["sensevoice_lengths_on_host"]


@contextlib.contextmanager
def funasr_own() -> Iterator[None]:
    """FunASR's own functions back where asrd's drop-ins are, for the block: the bench's baselines
    run FunASR as people run it, in the process where asrd's engine was loaded."""
    saved = [(module, name, getattr(module, name)) for _, places, _ in _steps() for module, name, _ in places]
    for module, name, function in saved:
        if getattr(function, "asrd_on_host", False):
            setattr(module, name, function.__wrapped__)
    try:
        yield
    finally:
        for module, name, function in saved:
            setattr(module, name, function)
