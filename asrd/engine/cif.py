"""The continuous integrate-and-fire loops of SeACo/BiCif-Paraformer (`CifPredictorV3`) in numpy.

FunASR's `cif` (tokens' acoustic embeddings) and `cif_wo_hidden` (the peaks that give timestamps,
on the 60 ms frames and again on the 3x upsampled ones) walk the frames in Python with a handful of
torch ops each: for a 15 s call that is ~1250 steps and ~10,000 kernel launches on a GPU, which is
why a SeACo call grew with its length on CUDA (a merged 15 s call 244 ms, a 4 s one 98 ms) and why
batches hid it. On MPS a launch costs more still. Here the same steps run on the host, on arrays,
and the results go back to the device.

The same values, bit for bit: each step is a float32 add, subtract, multiply or comparison, done
one after another in the same order as FunASR's, and those are exact whatever does them
(tests/test_cif.py compares with FunASR's own functions and through SeACo's inference).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np


def fires(alphas: np.ndarray, threshold: float) -> np.ndarray:
    """`cif_wo_hidden`: the integrated weight at each frame (B, T), before a fire takes `threshold`
    off it."""
    threshold = np.float32(threshold)
    integrate = np.zeros(alphas.shape[0], dtype=np.float32)
    out = np.empty_like(alphas)
    for t in range(alphas.shape[1]):
        integrate = integrate + alphas[:, t]
        out[:, t] = integrate
        integrate = np.where(integrate >= threshold, integrate - threshold, integrate)
    return out


def fires_and_embeddings(hidden: np.ndarray, alphas: np.ndarray,
                         threshold: float) -> tuple[np.ndarray, list[list[np.ndarray]]]:
    """`cif`: the integrated weight at each frame (B, T), and at each fire the weighted sum of the
    hidden frames since the last one (B, T_fired, H), one frame's remainder carried over."""
    batch, frames, size = hidden.shape
    threshold = np.float32(threshold)
    one = np.float32(1.0)
    integrate = np.zeros(batch, dtype=np.float32)
    frame = np.zeros((batch, size), dtype=np.float32)
    out = np.empty((batch, frames), dtype=np.float32)
    fired: list[list[np.ndarray]] = [[] for _ in range(batch)]
    for t in range(frames):
        alpha = alphas[:, t]
        completion = one - integrate
        integrate = integrate + alpha
        out[:, t] = integrate
        fire = integrate >= threshold
        integrate = np.where(fire, integrate - one, integrate)
        cur = np.where(fire, completion, alpha)
        remainder = alpha - cur
        frame = frame + cur[:, None] * hidden[:, t, :]
        for b in np.flatnonzero(fire):
            fired[b].append(frame[b].copy())
        frame = np.where(fire[:, None], remainder[:, None] * hidden[:, t, :], frame)
    return out, fired


def on_host_fires(original: Any) -> Any:
    """A drop-in for FunASR's `cif_wo_hidden(alphas, threshold)`: computed here, returned on the
    device of `alphas`."""
    import torch

    @functools.wraps(original)
    def cif_wo_hidden(alphas: Any, threshold: float) -> Any:
        if alphas.dtype != torch.float32:  # another precision: FunASR's own steps
            return original(alphas, threshold)
        values = fires(alphas.detach().cpu().numpy(), threshold)
        return torch.from_numpy(values).to(alphas.device)

    cif_wo_hidden.asrd_on_host = True  # type: ignore[attr-defined]
    return cif_wo_hidden


def on_host_cif(original: Any) -> Any:
    """A drop-in for FunASR's `cif(hidden, alphas, threshold)`: the loop computed here; the label
    count (a sum over frames) and the padding as FunASR does them, on the device."""
    import torch

    @functools.wraps(original)
    def cif(hidden: Any, alphas: Any, threshold: float) -> Any:
        if hidden.dtype != torch.float32 or alphas.dtype != torch.float32:  # another precision: FunASR's own
            return original(hidden, alphas, threshold)
        values, fired = fires_and_embeddings(hidden.detach().cpu().numpy(), alphas.detach().cpu().numpy(), threshold)
        device, size = hidden.device, hidden.shape[-1]
        max_label_len = int(torch.round(alphas.sum(-1)).int().max())
        rows = []
        for frames in fired:
            embedded = torch.from_numpy(np.stack(frames) if frames else np.zeros((0, size), np.float32)).to(device)
            padding = torch.zeros([max_label_len - embedded.size(0), size], device=device)
            rows.append(torch.cat([embedded, padding], 0))
        return torch.stack(rows, 0), torch.from_numpy(values).to(device)

    cif.asrd_on_host = True  # type: ignore[attr-defined]
    return cif
