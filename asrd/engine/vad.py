"""Fast FSMN-VAD: exactly the speech regions FunASR's `fsmn-vad` returns, at a fraction of its time.

FunASR's offline VAD (`FsmnVADStreaming.inference`) walks the file in 60 s chunks and then decides
frame by frame in Python, with a torch `.item()` and a dozen method calls per 10 ms frame; that
loop is most of its time. Here the same weights run on the same inputs, and only the bookkeeping
changes:

* features: the frontend's fbank (FunASR's own `fbank`, so the same backend), LFR and CMVN are
  computed once per frame, in numpy, chunk by chunk with no recomputed overlap;
* the network runs on exactly FunASR's chunks with its streaming cache, so every score is
  bit-identical (a different GEMM shape could move a float by one ulp and flip a decision), on a
  worker thread: torch lets go of the GIL inside its ops, so chunk k is scored while this thread
  computes chunk k+1's fbank (kaldi-native-fbank keeps the GIL) and chunk k-1's frame states;
* per-frame speech/silence states (decibel, speech-vs-noise score) are vectorised, with the few
  frames within rounding of the threshold re-decided with `math` as FunASR does;
* the decision state machine (window detector, start/end points, `max_single_segment_time`,
  dynamic end-silence schedule per chunk, end-of-file flush) is FunASR's, rewritten over plain
  ints: long runs where nothing can happen are skipped with a binary search, the rest is stepped.

Memory stays flat on long files: only the features of the chunk being scored and the next exist; per file a
few bytes per 10 ms frame are kept (~10 MB for 2 h). Offline, multi-utterance mode only (what `generate()` uses).
"""

from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

_STARTED, _IN_SPEECH = 1, 2  # FunASR's kVadInStateStartPointNotDetected / kVadInStateInSpeechSegment


@dataclass(frozen=True)
class _Chunk:
    """One iteration of FunASR's chunk loop: the score frames it emits, [start, end)."""

    start: int
    end: int
    final: bool


class FastVad:
    """FSMN-VAD over a whole file; `segments(samples, **options)` -> [[start_ms, end_ms], ...].

    `model` is FunASR's loaded `FsmnVADStreaming`, `kwargs` the AutoModel's vad kwargs (frontend,
    device, options) — the same objects FunASR's own VAD call uses."""

    def __init__(self, model: Any, kwargs: dict[str, Any]):
        self.model = model
        self.kwargs = kwargs
        self.frontend = kwargs["frontend"]
        fe = self.frontend
        if type(fe).__name__ != "WavFrontendOnline" or fe.lfr_n != 1 or fe.lfr_m % 2 != 1:
            raise NotImplementedError(f"fast VAD needs WavFrontendOnline with lfr_n=1, odd lfr_m: {fe}")
        if model.vad_opts.detect_mode != 1:
            raise NotImplementedError("fast VAD supports the multiple-utterance detect mode only")
        cmvn = None if fe.cmvn is None else np.asarray(fe.cmvn, dtype=np.float32)
        self._cmvn = cmvn

    # --- whole file ------------------------------------------------------------------------

    def segments(self, samples: np.ndarray, **options: Any) -> list[list[int]]:
        """Speech regions in ms, as FunASR's `inference` returns them for these samples."""
        kwargs = {**self.kwargs, **{k: v for k, v in options.items() if k != "device"}}
        wave = np.ascontiguousarray(np.asarray(samples, dtype=np.float32).reshape(-1))
        if wave.size == 0:
            return []
        fe = self.frontend
        chunk_size = kwargs.get("chunk_size", 60000)
        if chunk_size < 15000 or kwargs.get("is_streaming_input", False):
            raise NotImplementedError("fast VAD runs the offline (non-streaming) mode only")
        chunks = _chunks(wave.size, int(chunk_size * fe.fs / 1000), fe.frame_sample_length,
                         fe.frame_shift_sample_length, (fe.lfr_m - 1) // 2)
        dynamic = kwargs.get("dynamic_silence", kwargs.get("max_end_silence_time") is None)
        opts = self.model.vad_opts
        noise_thres = 0.5 if dynamic else kwargs.get("speech_noise_thres", opts.speech_noise_thres)
        states = np.zeros(chunks[-1].end if chunks else 0, dtype=np.int8)
        features = _Features(wave, fe, self._cmvn)
        noise = _NoiseAverage(opts)

        def frame_states(chunk: _Chunk, scores: Future) -> None:
            decibel = _decibel(wave, chunk.start, chunk.end, fe.frame_sample_length, fe.frame_shift_sample_length)
            sil = _silence_score(scores.result(), opts.sil_pdf_ids)
            states[chunk.start:chunk.end] = _frame_states(sil, decibel, opts, noise_thres, noise)

        # The network scores chunk k on its own thread (torch lets go of the GIL) while this one
        # computes chunk k+1's fbank (which holds it) and chunk k-1's frame states.
        with ThreadPoolExecutor(1, thread_name_prefix="asrd-vad") as network:
            scoring = _Scorer(self.model)
            last: tuple[_Chunk, Future] | None = None
            for chunk in chunks:
                if chunk.end == chunk.start:
                    continue
                feats = features.lfr_cmvn(chunk.start, chunk.end, chunk.final)
                running = (chunk, network.submit(scoring, feats))
                if last is not None:
                    frame_states(*last)
                last = running
            if last is not None:
                frame_states(*last)
        if not dynamic:
            end_silence = kwargs.get("max_end_silence_time")
            end_silence = opts.max_end_silence_time if end_silence is None else end_silence
            schedule = None
        else:
            end_silence, schedule = None, kwargs.get("silence_schedule", _default_schedule())
        return decide(states, chunks, opts, chunk_size, end_silence, schedule)

    __call__ = segments


class _Scorer:
    """FunASR's VAD network over consecutive chunks, carrying its streaming cache; called on one
    worker thread, in chunk order (no_grad is per thread, so it is entered here)."""

    def __init__(self, model: Any):
        self.model = model
        self.cache: dict[str, Any] = {}
        self.device = next(model.parameters()).device  # where FunASR's own VAD runs it

    def __call__(self, feats: np.ndarray) -> Any:
        import torch

        with torch.no_grad():
            return self.model.encoder(torch.from_numpy(feats)[None].to(self.device), cache=self.cache)[0].cpu()


def _default_schedule() -> list[tuple[float, int]]:
    from funasr.models.fsmn_vad_streaming.model import DEFAULT_SILENCE_SCHEDULE

    return DEFAULT_SILENCE_SCHEDULE


# --- chunking and features -------------------------------------------------------------------


def _frames_in(n_samples: int, frame_len: int, shift: int) -> int:
    """Whole fbank frames in the first `n_samples` samples (WavFrontendOnline.compute_frame_num)."""
    n = int((n_samples - frame_len) / shift + 1)
    return n if n >= 1 and n_samples >= frame_len else 0


def _chunks(n_samples: int, stride: int, frame_len: int, shift: int, right: int) -> list[_Chunk]:
    """FunASR's chunk loop: `n` iterations over `stride` samples; a non-final chunk emits the LFR
    frames whose right context is complete, the final one flushes the rest."""
    n = n_samples // stride + 1
    total = _frames_in(n_samples, frame_len, shift)
    chunks, done = [], 0
    for i in range(n):
        final = i == n - 1
        end = total if final else max(_frames_in(min((i + 1) * stride, n_samples), frame_len, shift) - right, done)
        chunks.append(_Chunk(done, end, final))
        done = end
    return chunks


class _Features:
    """fbank frames computed once each (carried between chunks), then LFR + CMVN per chunk."""

    def __init__(self, wave: np.ndarray, frontend: Any, cmvn: np.ndarray | None):
        self.wave = wave
        self.fe = frontend
        self.cmvn = cmvn
        self.total = _frames_in(wave.size, frontend.frame_sample_length, frontend.frame_shift_sample_length)
        self.half = (frontend.lfr_m - 1) // 2
        self.base = 0  # frame index of self.bank[0]
        self.bank = np.zeros((0, frontend.n_mels), dtype=np.float32)

    def _fbank(self, first: int, last: int) -> np.ndarray:
        import torch
        from funasr.utils import fbank as kaldi

        fe = self.fe
        shift, length = fe.frame_shift_sample_length, fe.frame_sample_length
        piece = self.wave[first * shift:(last - 1) * shift + length] * (1 << 15)
        mat = kaldi.fbank(torch.from_numpy(piece)[None], num_mel_bins=fe.n_mels, frame_length=fe.frame_length,
                          frame_shift=fe.frame_shift, dither=fe.dither, energy_floor=0.0,
                          window_type=fe.window, sample_frequency=fe.fs)
        return mat.numpy().astype(np.float32, copy=False)

    def lfr_cmvn(self, start: int, end: int, final: bool) -> np.ndarray:
        need = min(end + self.half, self.total)
        have = self.base + len(self.bank)
        keep_from = max(start - self.half, 0)
        parts = [self.bank[keep_from - self.base:]]
        if need > have:
            parts.append(self._fbank(have, need))
        self.bank = np.concatenate(parts) if len(parts) > 1 else parts[0]
        self.base = keep_from
        idx = np.arange(start, end)[:, None] + np.arange(-self.half, self.half + 1)
        np.clip(idx, 0, self.total - 1, out=idx)
        feats = self.bank[idx - self.base].reshape(end - start, -1)
        if self.cmvn is not None:
            feats += self.cmvn[0]
            feats *= self.cmvn[1]
        return feats


def _silence_score(scores: Any, sil_ids: list[int]) -> np.ndarray:
    """Per-frame silence posterior as GetFrameState sums it (Python floats, left to right)."""
    cols = scores.numpy()[:, list(sil_ids)].astype(np.float64)
    if len(sil_ids) == 1:
        return cols[:, 0]
    total = np.zeros(len(cols))
    for j in range(cols.shape[1]):
        total = total + cols[:, j]
    return total


def _decibel(wave: np.ndarray, start: int, end: int, frame_len: int, shift: int) -> np.ndarray:
    """ComputeDecibel's float32 arithmetic, on the same chunk of frames."""
    piece = wave[start * shift:(end - 1) * shift + frame_len]
    frames = np.lib.stride_tricks.sliding_window_view(piece, frame_len)[::shift]
    return (10 * np.log10(np.sum(np.square(frames), axis=1) + 0.000001)).astype(np.float64)


class _NoiseAverage:
    """GetFrameState's running noise level (decibels of frames scored as noise), kept exactly."""

    def __init__(self, opts: Any):
        self.value = -100.0
        self.n = opts.noise_frame_num_used_for_snr

    def update(self, decibel: float) -> None:
        self.value = decibel if self.value < -99.9 else (decibel + self.value * (self.n - 1)) / self.n


def _frame_states(sil: np.ndarray, decibel: np.ndarray, opts: Any, noise_thres: float,
                  noise: _NoiseAverage) -> np.ndarray:
    """1 where GetFrameState says speech (and DetectOneFrame keeps it), else 0."""
    loud = decibel >= opts.decibel_thres
    checked = sil[loud]
    if checked.size and (checked.min() <= 0.0 or checked.max() >= 1.0):
        raise ValueError("math domain error")  # FunASR's math.log(0) on the same frame
    ratio = opts.speech_2_noise_ratio
    with np.errstate(divide="ignore", invalid="ignore"):
        speech = np.exp(np.log(1.0 - sil))
        floor = np.exp(np.log(sil) * ratio) + noise_thres
    voiced = speech >= floor
    for t in np.flatnonzero(loud & (np.abs(speech - floor) <= 1e-9)).tolist():
        s = float(sil[t])  # within rounding of the threshold: decide with math, as FunASR does
        voiced[t] = math.exp(math.log(1.0 - s)) >= math.exp(math.log(s) * ratio) + noise_thres
    voiced &= loud
    noisy = loud & ~voiced
    # the level is a mean of noise decibels seen so far: bound it before tracking it frame by frame
    upper = max([noise.value] + ([float(decibel[noisy].max())] if noisy.any() else []))
    if voiced.any() and float(decibel[voiced].min()) - upper < opts.snr_thres:
        for t in np.flatnonzero(loud).tolist():
            d = float(decibel[t])
            if voiced[t]:
                voiced[t] = d - noise.value >= opts.snr_thres
            else:
                noise.update(d)
    else:
        for d in decibel[noisy].tolist():
            noise.update(d)
    if not math.fabs(1.0) > opts.fe_prior_thres:
        voiced[:] = False
    return voiced.astype(np.int8)


# --- decisions ---------------------------------------------------------------------------------


def decide(states: np.ndarray, chunks: list[_Chunk], opts: Any, chunk_ms: int,
           end_silence_ms: int | None, schedule: list[tuple[float, int]] | None) -> list[list[int]]:
    """FunASR's DetectCommonFrames/DetectLastFrames over per-frame states (1 speech, 0 silence)."""
    return _Decider(states, opts, end_silence_ms, schedule).run(chunks, chunk_ms)


class _Decider:
    """FsmnVADStreaming's frame state machine and WindowDetector, over plain ints.

    Frame `t`'s window sum is `cs[t+1] - cs[max(r, t-W+1)]`, `r` being the first frame after the
    last reset. Runs where nothing can happen are skipped: in silence until the window reaches the
    start threshold, in speech while the window stays above the end threshold, in end silence
    until the silence timeout, always stopping at `max_single_segment_time` and the last frame."""

    def __init__(self, states: np.ndarray, opts: Any, end_silence_ms: int | None,
                 schedule: list[tuple[float, int]] | None):
        self.opts = opts
        self.fm = opts.frame_in_ms
        self.W = int(opts.window_size_ms / self.fm)
        self.up = int(opts.sil_to_speech_time_thres / self.fm)
        self.down = int(opts.speech_to_sil_time_thres / self.fm)
        self.latency = self.W + (int(opts.lookback_time_start_point / self.fm) if opts.do_extend else 0)
        self.lookahead = int(opts.lookahead_time_end_point / self.fm)
        self.max_frames = opts.max_single_segment_time / self.fm
        self.schedule = schedule
        if end_silence_ms is not None:
            self.end_thresh = end_silence_ms - opts.speech_to_sil_time_thres
        else:
            self.end_thresh = opts.max_end_silence_time - opts.speech_to_sil_time_thres
        n = len(states)  # int32 arrays, searched not looped: 12 bytes a frame, ~9 MB for 2 h
        cs = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(states, out=cs[1:])
        self.cs = cs
        full = cs[1:] - np.concatenate([np.zeros(self.W, np.int32), cs[1:n + 1 - self.W]])[:n]
        self.up_frames = np.flatnonzero(full >= self.up).astype(np.int32)  # full window starts speech
        self.down_frames = np.flatnonzero(full <= self.down).astype(np.int32)  # full window ends speech
        self.n = n
        # machine state
        self.state = _STARTED
        self.pre = 0  # window detector's pre_frame_state (1 speech)
        self.r = 0  # window restart frame
        self.cont = 0  # continous_silence_frame_count
        self.latest = 0  # latest_confirmed_speech_frame
        self.dbsf = 0  # data_buf_start_frame
        self.start = -1  # confirmed_start_frame
        self.segs: list[list[int]] = []
        self.ended = False  # a segment ended in the current chunk

    # FunASR's output-buffer helpers (only the fields that reach the result)
    def _pop(self, frame: int, first: bool) -> None:
        self.dbsf = max(self.dbsf, frame) + 1
        if first or not self.segs:
            self.segs.append([frame * self.fm, (frame + 1) * self.fm])
        else:
            self.segs[-1][1] = (frame + 1) * self.fm

    def _detect_range(self, a: int, b: int) -> None:
        """OnVoiceDetected for frames a..b-1."""
        if a >= b:
            return
        self._pop(a, False)
        self.segs[-1][1] = b * self.fm
        self.dbsf += b - 1 - a
        self.latest = b - 1

    def _voice_end(self, end_frame: int) -> None:
        self._detect_range(self.latest + 1, end_frame)
        self._pop(end_frame, False)
        self.ended = True

    def _reset(self, t: int) -> None:
        self.state = _STARTED
        self.pre = 0
        self.r = t + 1
        self.cont = 0
        self.latest = 0
        self.start = -1

    def _too_long(self, t: int) -> bool:
        return t - self.start + 1 > self.max_frames

    def _first_too_long(self) -> int:
        """First frame at which the current segment exceeds max_single_segment_time."""
        t = self.start + math.floor(self.max_frames)
        while t > self.start and self._too_long(t - 1):
            t -= 1
        while not self._too_long(t):
            t += 1
        return t

    def _step(self, t: int, final: bool) -> None:
        """DetectOneFrame for one frame, exactly."""
        cs = self.cs
        win = int(cs[t + 1]) - int(cs[max(self.r, t - self.W + 1)])
        if self.pre == 0 and win >= self.up:
            self.pre, change = 1, "sil2speech"
        elif self.pre == 1 and win <= self.down:
            self.pre, change = 0, "speech2sil"
        else:
            change = "sil2sil" if self.pre == 0 else "speech2speech"
        if change == "sil2speech":
            self.cont = 0
            if self.state == _STARTED:
                start = max(self.dbsf, t - self.latency)
                self.start = start
                self._pop(start, True)
                self.state = _IN_SPEECH
                self._detect_range(start + 1, t + 1)
            else:
                self._detect_range(self.latest + 1, t)
                self._speech_frame(t, final)
        elif change in ("speech2sil", "speech2speech"):
            self.cont = 0
            if self.state == _IN_SPEECH:
                self._speech_frame(t, final)
        else:
            self.cont += 1
            if self.state == _STARTED:
                if not final and t >= self.latency:
                    self.dbsf = max(self.dbsf, t - self.latency)
                # at the last frame FunASR either fakes an empty segment or notes silence: no output
            elif self.cont * self.fm >= self.end_thresh:
                back = int(self.end_thresh / self.fm)
                if self.opts.do_extend:
                    back = max(0, back - self.lookahead - 1)
                self._voice_end(t - back)
                self._reset(t)
            elif self._too_long(t):
                self._voice_end(t)
                self._reset(t)
            elif self.opts.do_extend and not final:
                if self.cont <= self.lookahead:
                    self._detect_range(t, t + 1)
            elif final:
                self._voice_end(t)
                self._reset(t)

    def _speech_frame(self, t: int, final: bool) -> None:
        """The common tail of the in-speech branches: timeout, go on, or end at the last frame."""
        if self._too_long(t):
            self._voice_end(t)
            self._reset(t)
        elif not final:
            self._detect_range(t, t + 1)
        else:
            self._voice_end(t)
            self._reset(t)

    @staticmethod
    def _next(frames: np.ndarray, t: int, limit: int) -> int:
        i = int(frames.searchsorted(np.int32(t)))  # same dtype: no cast of the whole array
        return int(frames[i]) if i < len(frames) and frames[i] < limit else limit

    def _run_frames(self, t: int, end: int) -> None:
        """Frames t..end-1, none of them the file's last."""
        while t < end:
            if t < self.r + self.W - 1:  # window still filling after a reset
                self._step(t, False)
                t += 1
                continue
            if self.state == _STARTED:  # silence: jump to where the window starts speech
                u = self._next(self.up_frames, t, end)
                if u > t:
                    self.cont += u - t
                    if u - 1 >= self.latency:
                        self.dbsf = max(self.dbsf, u - 1 - self.latency)
                    t = u
                    continue
            elif self.pre == 1:  # speech continues while the window stays above `down`
                v = min(self._next(self.down_frames, t, end), self._first_too_long())
                if v > t:
                    self.cont = 0
                    self._detect_range(t, v)
                    t = v
                    continue
            else:  # end silence: counts up to the timeout unless the window starts speech
                k = max(1, math.ceil(self.end_thresh / self.fm))
                v = min(self._next(self.up_frames, t, end), self._first_too_long(),
                        t + max(0, k - self.cont - 1))
                if v > t:
                    if self.opts.do_extend and self.cont < self.lookahead:
                        self._detect_range(t, min(v, t + self.lookahead - self.cont))
                    self.cont += v - t
                    t = v
                    continue
            self._step(t, False)
            t += 1

    def run(self, chunks: list[_Chunk], chunk_ms: int) -> list[list[int]]:
        accumulated, in_speech = 0, False
        speech_to_sil = self.opts.speech_to_sil_time_thres
        for chunk in chunks:
            if self.schedule is not None:
                if self.state == _IN_SPEECH or in_speech:
                    accumulated += chunk_ms
                    in_speech = True
                for limit_ms, silence_ms in self.schedule:
                    if accumulated <= limit_ms:
                        self.end_thresh = max(silence_ms - speech_to_sil, 0)
                        break
            if chunk.end == chunk.start:
                continue  # FunASR's forward returns at once: no frames, no decisions
            self.ended = False
            last = chunk.end - 1 if chunk.final else chunk.end
            self._run_frames(chunk.start, last)
            if chunk.final:
                self._step(last, True)
            if self.ended and self.schedule is not None:
                accumulated, in_speech = 0, False
        return [list(s) for s in self.segs]
