"""Which device each model runs on and why, then checked against its weights once it is built.

The ASR model runs on the compute device (`engine.device`'s choice). The others go where they are
fastest and correct:
* VAD (FSMN) on the CPU, always: it is ~5x slower on MPS (FunASR#3701: 123 s vs 23.6 s for 2 h on an
  M2) and 2x slower on an H200 than on 8 CPU threads (1.97 s vs 0.99 s per 10 min).
* punctuation (CT-Transformer) on the CPU beside MPS: it runs once per file over short token windows,
  where GPU dispatch costs more than the arithmetic, and keeps those shapes out of MPSGraph's cache;
  on CUDA it stays on the GPU (FunASR's own choice there).
* speakers (CAM++) on the compute device, except MPS before torch 2.9: its `seg_pooling` uses
  `avg_pool1d(ceil_mode=True)`, which returned wrong values on MPS (pytorch#160743) until
  pytorch#161011 — speaker labels would be silently wrong, so it runs on the CPU there.

FunASR up to 1.4.15 overwrites `vad_kwargs["device"]` (and punc's, spk's) with the ASR device; 1.4.16
honours it. `verify` does not trust either: it reads each model's parameters after construction and
moves a misplaced one, fixing the device FunASR moves that model's inputs to. No torch import here:
`asrd devices` explains the plan without building anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# role -> (AutoModel attribute of the model, of its kwargs)
ROLES = {"asr": ("model", "kwargs"), "vad": ("vad_model", "vad_kwargs"), "punc": ("punc_model", "punc_kwargs"),
         "spk": ("spk_model", "spk_kwargs")}
MPS_POOLING_FIX = (2, 9)  # pytorch#161011: MPS avg_pool1d with ceil_mode=True


@dataclass(frozen=True)
class Placement:
    device: str
    reason: str


def torch_version(version: str) -> tuple[int, int]:
    """(major, minor) of a torch version string ('2.8.0', '2.9.0.dev20250801', '2.13.0+cpu')."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def plan(device: str, torch_version_string: str, roles: Iterable[str] = ROLES) -> dict[str, Placement]:
    """Where each of `roles` should run when the ASR model runs on `device` ('mps', 'cuda', 'cpu')."""
    placements: dict[str, Placement] = {}
    for role in roles:
        if role == "asr" or device == "cpu":
            placements[role] = Placement(device, "the compute device" if role == "asr" else "everything runs on the CPU")
        elif role == "vad":
            placements[role] = Placement("cpu", f"FSMN-VAD is faster on the CPU than on {device} "
                                                "(~5x on MPS, 2x on an H200)")
        elif role == "punc" and device == "mps":
            placements[role] = Placement("cpu", "runs once per file on short token windows: the CPU is as fast, "
                                                "and its shapes stay out of the MPS graph cache")
        elif role == "spk" and device == "mps" and torch_version(torch_version_string) < MPS_POOLING_FIX:
            placements[role] = Placement("cpu", f"torch {torch_version_string} < 2.9: MPS avg_pool1d(ceil_mode=True) "
                                                "gives wrong values (pytorch#160743), speaker labels would be wrong")
        else:
            placements[role] = Placement(device, "the compute device")
    return placements


def device_kwargs(placements: dict[str, Placement]) -> dict[str, dict[str, str]]:
    """AutoModel's vad_kwargs/punc_kwargs/spk_kwargs device requests for the plan."""
    return {ROLES[role][1]: {"device": p.device} for role, p in placements.items() if role != "asr"}


def location(module: Any) -> str | None:
    """Where a model's weights are, as torch names it ('cpu', 'cuda:0', 'mps:0'); None without any."""
    try:
        return str(next(module.parameters()).device)
    except (StopIteration, AttributeError):
        return None


def verify(automodel: Any, placements: dict[str, Placement], log: Any) -> dict[str, str]:
    """Every built model's device read from its parameters; one not where `placements` wants it is
    moved there (`.to`), and its kwargs (FunASR moves inputs to kwargs["device"]) and FunASR's
    per-job snapshot of them say so too. Returns role -> device for the log."""
    found: dict[str, str] = {}
    for role, (model_attr, kwargs_attr) in ROLES.items():
        model = getattr(automodel, model_attr, None)
        if model is None:
            continue
        where = location(model)
        wanted = placements[role].device
        if role != "asr" and where is not None and where.split(":")[0] != wanted:
            log.warning("engine.device_corrected", model=role, found=where, device=wanted,
                        reason="FunASR built it elsewhere (releases up to 1.4.15 ignore the request)")
            model.to(wanted)
            for kwargs in (getattr(automodel, kwargs_attr), getattr(automodel, "_base_kwargs_map", {}).get(kwargs_attr)):
                if isinstance(kwargs, dict):
                    kwargs["device"] = wanted
            where = location(model)
        found[role] = where or "cpu"
    return found
