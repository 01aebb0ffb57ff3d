"""One job re-run on the CPU when an op fails on the Apple GPU: not the recording's fault.

MPS lacks some ops and dtypes ("The operator 'aten::…' is not currently implemented for the MPS
device", "Cannot convert a MPS Tensor to float64"); PYTORCH_ENABLE_MPS_FALLBACK covers the first kind
only, and a FunASR release can bring a new one. Such an error says nothing about the recording, so
the job is run again on the CPU, with a second model set built for it by the same load path (the
models' FunASR kwargs, the compat steps and the placement check are then right by construction),
and dropped after the job. Moving the MPS models there and back instead would copy every weight
twice through the MPS allocator and patch FunASR's per-model device kwargs and their snapshot in
place, leaving a half-moved set if a move failed. The cost, a load from the local model cache and
that set's memory for one job, is paid rarely: the parent moves the engine to the CPU for good on
the second such job (asrd.engine.process). Imported only inside the engine process.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from asrd.engine.device import freeze_loaded_objects
from asrd.engine.funasr import FunASREngine, ProgressCallback
from asrd.logging import get_logger
from asrd.transcript import SourceInfo, Transcript

log = get_logger("asrd.engine")
FallbackCallback = Callable[[str, "str | None", str], None]  # (device, op, error)
ERROR_CHARS = 300


def is_device_error(error: BaseException, device: str) -> bool:
    """An op that failed because of the Apple GPU, not because of the input."""
    return device == "mps" and isinstance(error, (NotImplementedError, RuntimeError)) and "mps" in str(error).lower()


def failed_op(error: BaseException) -> str | None:
    """The operator an MPS error names ('aten::_fft_r2c'), if it names one."""
    match = re.search(r"'(aten::[\w.]+)'", str(error)) or re.search(r"\b(aten::[\w.]+)", str(error))
    return match.group(1) if match else None


def cpu_config(config: Any) -> Any:
    return dataclasses.replace(config, engine=dataclasses.replace(config.engine, device="cpu"))


def transcribe(engine: FunASREngine, samples: np.ndarray, source: SourceInfo,
               on_progress: ProgressCallback | None = None, on_stage: Callable[[str], None] | None = None,
               on_fallback: FallbackCallback | None = None) -> Transcript:
    """engine.transcribe; after an MPS op error, the same job on a CPU model set loaded for it
    (unless engine.fallback_on_error is false: then the error stands)."""
    try:
        return engine.transcribe(samples, source, on_progress, on_stage)
    except Exception as error:
        if not is_device_error(error, engine.device) or not engine.config.engine.fallback_on_error:
            raise
        device, op, text = engine.device, failed_op(error), f"{type(error).__name__}: {error}"[:ERROR_CHARS]
    log.warning("engine.device_fallback", scope="job", requested=device, device="cpu", op=op, error=text,
                reason=f"an op failed on {device}: this job runs again on the CPU")
    if on_fallback:
        on_fallback(device, op, text)
    cpu = FunASREngine(cpu_config(engine.config))
    try:
        cpu.load()
        transcript = cpu.transcribe(samples, source, on_progress, on_stage)
    finally:
        cpu.unload()  # thaws every frozen object (asrd.engine.device.freeze_loaded_objects)...
        freeze_loaded_objects()  # ...so the engine's own models are frozen again
    transcript.stats["device_fallback"] = {"from": device, "op": op, "error": text}
    return transcript
