"""The rules MPS imposes, checked on the CPU: a dispatch mode that records every op taking or
making a float64 tensor (MPS has none: pytorch#122602), with the FunASR/asrd line that ran it.

Scope: the ASR, punctuation and speaker models' `inference` calls, i.e. the models on the compute
device. The VAD is left out because on MPS it runs on the CPU by design (asrd sets
`vad_kwargs["device"] = "cpu"`), and so does the cluster backend (it takes `embeddings.cpu()`).
Code inside `asrd.engine.compat.host_section()` is on the CPU by construction and is not counted.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from asrd.engine.compat import in_host_section

FORBIDDEN = frozenset({torch.float64, torch.complex128})


@dataclass(frozen=True)
class Break:
    op: str
    dtypes: tuple[str, ...]
    where: str  # the innermost funasr/asrd/test frame: file:line function

    def __str__(self) -> str:
        return f"{self.op} {'/'.join(self.dtypes)} at {self.where}"


class MpsRules(TorchDispatchMode):
    """Records (never raises, so a whole job is surveyed) each op with a float64 operand."""

    def __init__(self) -> None:
        super().__init__()
        self.breaks: list[Break] = []
        self.checked: set[str] = set()  # model classes run under the mode (a scope that missed one shows)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not in_host_section():
            dtypes = {t.dtype for t in tree_leaves((args, kwargs, out)) if isinstance(t, torch.Tensor)}
            if dtypes & FORBIDDEN:
                self.breaks.append(Break(str(func), tuple(sorted(str(d) for d in dtypes)), _caller()))
        return out


def _caller() -> str:
    for frame in reversed(traceback.extract_stack()[:-3]):
        if frame.filename != __file__ and any(part in frame.filename for part in ("/funasr/", "/asrd/", "/tests/")):
            return f"{frame.filename.split('/site-packages/')[-1]}:{frame.lineno} {frame.name}"
    return "?"


@contextlib.contextmanager
def checking_models(engine: Any) -> Iterator[MpsRules]:
    """MpsRules around every non-VAD `inference` call of a loaded FunASREngine (see the scope above)."""
    rules = MpsRules()
    original = engine.model.inference

    def inference(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("model") is engine.model.vad_model:
            return original(*args, **kwargs)
        rules.checked.add(type(kwargs.get("model")).__name__)
        with rules:
            return original(*args, **kwargs)

    engine.model.inference = inference
    try:
        yield rules
    finally:
        del engine.model.inference  # back to the bound method
