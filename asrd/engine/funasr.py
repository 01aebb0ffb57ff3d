"""FunASR, driven by asrd: VAD once over the file, ASR per speech segment, then punctuation and speakers.

FunASR's `AutoModel.generate` runs the same stages in one call, but reports no whole-file progress,
cannot cap memory per call and only empties the CUDA cache. asrd builds the models with FunASR's
own `AutoModel` (so loading, hub downloads and local folders behave exactly as upstream) and calls
its `inference` stage by stage, with the same slicing, options and post-processing helpers
(`timestamp_sentence`, `sv_chunk`, the cluster backend, `distribute_spk`) so the words are FunASR's.
Imported only inside the engine process: it imports torch and funasr.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from asrd.config import Config
from asrd.engine import bounds, compat, placement
from asrd.engine import device as devices
from asrd.engine.merge import plan_calls, split_call
from asrd.engine.options import model_options
from asrd.engine.protocol import FINISHING, RECOGNISING
from asrd.engine.quiet import captured_output
from asrd.engine.sentences import Token, split_sentences
from asrd.engine.shapes import PADDABLE, PaddedFrontend
from asrd.engine.tags import parse_tags
from asrd.logging import get_logger
from asrd.presets import PRESETS
from asrd.stats import speech_stats
from asrd.transcript import Segment, SourceInfo, Transcript

log = get_logger("asrd.engine")
SAMPLES_PER_MS = 16  # 16 kHz


@dataclass
class Progress:
    """Whole-file progress, reported after each ASR call."""

    done_s: float
    total_s: float
    segments_done: int
    segments_total: int

    @property
    def fraction(self) -> float:
        return self.done_s / self.total_s if self.total_s > 0 else 1.0


ProgressCallback = Callable[[Progress], None]


@dataclass
class SegmentResult:
    """ASR output for one VAD speech region (times in ms from the start of the file)."""

    start_ms: int
    end_ms: int
    raw_text: str
    timestamps: list[list[int]] = field(default_factory=list)
    speaker_chunks: list[list[Any]] = field(default_factory=list)  # sv_chunk output: [start_s, end_s, audio]
    embeddings: Any = None  # torch tensor (n_chunks, dim) when a speaker model is configured

    @property
    def duration_s(self) -> float:
        return (self.end_ms - self.start_ms) / 1000


@dataclass
class Timings:
    vad_s: float = 0.0
    asr_s: float = 0.0
    punc_s: float = 0.0
    spk_s: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.__dict__.items()}


def model_placements(config: Config, device: str, torch_version: str) -> dict[str, placement.Placement]:
    """Where each configured model runs when the ASR model runs on `device` (asrd.engine.placement)."""
    return placement.plan(device, torch_version, [role for role, model in config.models().items() if model])


def automodel_kwargs(config: Config, device: str, folders: dict[str, str] | None = None,
                     torch_version: str | None = None) -> dict[str, Any]:
    """Arguments for FunASR's AutoModel: the models of the preset (or overrides), the ASR model on
    `device` and the others where asrd.engine.placement says, each asked for explicitly;
    `folders` (role -> local folder, from asrd.models.prepare) replaces hub ids."""
    if torch_version is None:
        import torch

        torch_version = torch.__version__
    models = {**config.models(), **(folders or {})}
    kwargs: dict[str, Any] = {
        "model": models["asr"],
        "device": device,
        "ncpu": config.engine.threads,
        "disable_update": True,  # else FunASR asks PyPI for a newer version at start
        "disable_pbar": True,
    }
    requests = placement.device_kwargs(model_placements(config, device, torch_version))
    if models["vad"]:
        kwargs["vad_model"] = models["vad"]
        kwargs["vad_kwargs"] = {"max_single_segment_time": int(config.model.max_segment_s * 1000),
                                **requests["vad_kwargs"]}
    if models["punc"]:
        kwargs["punc_model"] = models["punc"]
        kwargs["punc_kwargs"] = requests["punc_kwargs"]
    if models["spk"]:
        kwargs["spk_model"] = models["spk"]
        kwargs["spk_kwargs"] = requests["spk_kwargs"]
    return kwargs


class FunASREngine:
    """One set of loaded models on one device; `transcribe` is called for one job at a time."""

    def __init__(self, config: Config):
        self.config = config
        self.model: Any = None  # funasr.AutoModel
        self.device = "cpu"
        self.choice: devices.DeviceChoice | None = None
        self.placements: dict[str, placement.Placement] = {}
        self.devices: dict[str, str] = {}  # role -> where its weights are, read after loading
        self.load_s = 0.0
        self._torch: Any = None
        self._fast_vad: Any = None  # asrd.engine.vad.FastVad, built on first use (engine.vad: fast)
        self.pinned: str | None = None  # the device the daemon holds this engine to (asrd.engine.process)
        self.calls: str | None = None  # overrides engine.calls (the bench runs both ways on one engine)
        self.bucket_shapes: bool | None = None  # bound ASR input shapes (asrd.engine.shapes); None: on MPS
        self.shapes: set[tuple[int, ...]] = set()  # distinct ASR input shapes run while bounding them

    # --- loading ---------------------------------------------------------------------------

    def load(self) -> None:
        """Choose the device and build the models once (downloading hub ids on first use);
        ModelLoadError when a model is missing or incomplete."""
        from asrd import models

        with captured_output():  # a first-use download's progress bars
            folders = models.prepare(self.config)
        engine = self.config.engine
        devices.prepare_environment(engine.device, engine.device_priority)
        import torch

        self._torch = torch
        self.choice = devices.choose_device(engine.device, engine.device_priority, engine.fallback_on_error, torch)
        if self.choice.fell_back:
            log.warning("engine.device_fallback", scope="load", requested=self.choice.requested, device=self.choice.device,
                        reason=self.choice.reason)
        torch.set_num_threads(engine.threads)
        started = time.perf_counter()
        with captured_output():
            from funasr import AutoModel

            self.model = AutoModel(**automodel_kwargs(self.config, self.choice.device, folders, torch.__version__))
        self.device = devices.weights_device(self.model.model)  # FunASR falls back to the CPU silently
        self.placements = model_placements(self.config, self.device, torch.__version__)
        for role, where in self.placements.items():
            if role != "asr" and where.device != self.device:
                log.info("engine.model_placed", model=role, device=where.device, reason=where.reason)
        self.devices = placement.verify(self.model, self.placements, log)
        self.load_s = time.perf_counter() - started
        steps = compat.apply(self.device)  # what MPS lacks (float64), worked around before the first job
        steps += compat.apply_to_model(self.model.model)  # SenseVoice's lengths read on the host
        devices.freeze_loaded_objects()
        log.info("engine.loaded", device=self.device, devices=self.devices, requested=engine.device,
                 reason=self.choice.reason, models=self.config.models(), load_s=round(self.load_s, 2), compat=steps)

    @property
    def loaded(self) -> bool:
        return self.model is not None

    def unload(self) -> None:
        self.model = None
        self._fast_vad = None
        devices.thaw_loaded_objects()
        if self._torch is not None:
            devices.empty_cache(self.device, self._torch)

    # --- stages ----------------------------------------------------------------------------

    def _options(self) -> dict[str, Any]:
        """Per-call options FunASR's generate would receive from the config."""
        options = model_options(type(self.model.model).__name__, self.config.model)
        if self.model.spk_model is not None:
            options["output_timestamp"] = True  # speakers are placed by token timestamps
            options["return_time_stamps"] = True
        return options

    def detect_speech(self, samples: np.ndarray) -> list[tuple[int, int]]:
        """VAD over the whole file: speech regions in ms, each at most model.max_segment_s long."""
        if self.model.vad_model is None:
            step = int(self.config.model.max_segment_s * 1000)
            total = len(samples) // SAMPLES_PER_MS
            return [(start, min(start + step, total)) for start in range(0, total, step)]
        value = None
        if self.config.engine.vad == "fast":
            try:
                if self._fast_vad is None:
                    from asrd.engine.vad import FastVad

                    self._fast_vad = FastVad(self.model.vad_model, self.model.vad_kwargs)
                value = self._fast_vad(samples, **self._options())
            except NotImplementedError as error:  # a VAD model or mode it does not cover: FunASR's
                log.warning("engine.fast_vad_unsupported", reason=str(error))
        if value is None:
            result = self.model.inference(samples, model=self.model.vad_model, kwargs=self.model.vad_kwargs,
                                          **self._options())
            value = result[0]["value"]
        return [(int(start), int(end)) for start, end in value]

    @property
    def sequential(self) -> bool:
        """One ASR call at a time (merged regions), or batched calls: engine.calls, auto = MPS only."""
        mode = self.config.engine.calls if self.calls is None else self.calls
        return mode == "sequential" or (mode == "auto" and self.device == "mps")

    def merge_ms(self) -> int:
        return int(self.config.model.merge_length_s * 1000)

    def batches(self, regions: list[tuple[int, int]]) -> list[list[int]]:
        """Indices of regions per batched ASR call. cuda: FunASR's own batches (its grouping rule
        exactly: Paraformer's words depend on the padding, so the same groups give the same words). cpu:
        shortest-first batches of up to CPU_BATCH_MS padded (one region each with model.merge_length_s:
        0): the model's matrix products run faster on more rows (a 4.3 s region took 672 ms alone, 396 ms
        in a call of twelve, on 2 threads: BENCHMARKS.md, "CPU"). Anything else: one region each."""
        if self.device == "cuda":
            return funasr_batches(regions, CUDA_BATCH_MS)
        if self.device == "cpu" and self.merge_ms() > 0:
            return length_batches(regions, CPU_BATCH_MS)
        return length_batches(regions, 0)

    def asr_calls(self, regions: list[tuple[int, int]]) -> int:
        """How many ASR calls this file's regions take, as recognise() would make them."""
        return len(plan_calls(regions, self.merge_ms()) if self.sequential else self.batches(regions))

    def recognise(self, samples: np.ndarray, regions: list[tuple[int, int]], timings: Timings,
                  on_progress: ProgressCallback | None = None) -> list[SegmentResult]:
        """ASR (and speaker embeddings) per region, progress after each call; results in time order."""
        options = self._options()
        asr_options = dict(options)
        if self.bucket_shapes if self.bucket_shapes is not None else self.device == "mps":
            asr_options["frontend"] = PaddedFrontend(self.model.kwargs["frontend"], self.shapes,
                                                     pad=type(self.model.model).__name__ in PADDABLE)
        if self.sequential:
            return self._recognise_merged(samples, regions, timings, on_progress, options, asr_options)
        results: list[SegmentResult | None] = [None] * len(regions)
        total_s = sum(end - start for start, end in regions) / 1000
        done_s, done_n = 0.0, 0
        for batch in self.batches(regions):
            clips = [self._clip(samples, *regions[i]) for i in batch]
            started = time.perf_counter()
            outputs = self.model.inference(clips, model=self.model.model, kwargs=self.model.kwargs,
                                           batch_size=len(clips), **asr_options)
            timings.asr_s += time.perf_counter() - started
            for i, clip, output in zip(batch, clips, outputs):
                start, end = regions[i]
                result = SegmentResult(start, end, str(output.get("text", "")),
                                       [[int(a) + start, int(b) + start] for a, b in output.get("timestamp", [])])
                self._speakers_of(result, clip, options, timings)
                results[i] = result
                done_s += result.duration_s
                done_n += 1
            if on_progress:
                on_progress(Progress(done_s, total_s, done_n, len(regions)))
        return [r for r in results if r is not None]

    def _recognise_merged(self, samples: np.ndarray, regions: list[tuple[int, int]], timings: Timings,
                          on_progress: ProgressCallback | None, options: dict[str, Any],
                          asr_options: dict[str, Any]) -> list[SegmentResult]:
        """One call at a time (batch_size=1, as MPS wants), adjacent regions merged into calls of up to
        model.merge_length_s and cut back into regions by token timestamps (asrd.engine.merge)."""
        results: list[SegmentResult | None] = [None] * len(regions)
        total_s = sum(end - start for start, end in regions) / 1000
        done_s, done_n = 0.0, 0
        merged_options = {**asr_options, "output_timestamp": True}  # the words' times place them
        for call in plan_calls(regions, self.merge_ms()):
            clip = self._clip(samples, call.start_ms, call.end_ms)
            started = time.perf_counter()
            [output] = self.model.inference([clip], model=self.model.model, kwargs=self.model.kwargs, batch_size=1,
                                            **(merged_options if len(call.members) > 1 else asr_options))
            timings.asr_s += time.perf_counter() - started
            for piece in split_call(call, regions, output):
                result = SegmentResult(piece.start_ms, piece.end_ms, piece.text, piece.timestamps)
                self._speakers_of(result, self._clip(samples, piece.start_ms, piece.end_ms), options, timings)
                results[piece.region] = result
            done_s += sum(regions[i][1] - regions[i][0] for i in call.members) / 1000
            done_n += len(call.members)
            if on_progress:
                on_progress(Progress(done_s, total_s, done_n, len(regions)))
        return [r for r in results if r is not None]

    def _clip(self, samples: np.ndarray, start_ms: int, end_ms: int) -> Any:
        """A torch view of [start_ms, end_ms), as FunASR's own VAD path slices (Fun-ASR-Nano's prompt
        takes no numpy)."""
        return self._torch.from_numpy(samples[start_ms * SAMPLES_PER_MS:min(end_ms * SAMPLES_PER_MS, len(samples))])

    def _speakers_of(self, result: SegmentResult, clip: Any, options: dict[str, Any], timings: Timings) -> None:
        if self.model.spk_model is not None:
            started = time.perf_counter()
            self._embed_speakers(result, clip, options)
            timings.spk_s += time.perf_counter() - started

    def _embed_speakers(self, result: SegmentResult, clip: Any, options: dict[str, Any]) -> None:
        from funasr.models.campplus.utils import sv_chunk

        result.speaker_chunks = sv_chunk([[result.start_ms / 1000, result.end_ms / 1000, clip.numpy()]])
        outputs = self.model.inference([c[2] for c in result.speaker_chunks], model=self.model.spk_model,
                                       kwargs=self.model.spk_kwargs, **options)
        result.embeddings = self._torch.cat([o["spk_embedding"] for o in outputs], dim=0)

    def sentences(self, samples: np.ndarray, results: list[SegmentResult], timings: Timings) -> list[Segment]:
        """Segments for the transcript: punctuated sentences with times where the models give
        token timestamps and punctuation, else one per speech region (bounds tightened to the
        voice); speakers placed on them."""
        tagged = [parse_tags(r.raw_text) for r in results]
        rms = bounds.frame_rms(samples)
        floor = bounds.noise_floor(rms)
        spans = [bounds.tighten(rms, floor, r.start_ms, r.end_ms) for r in results]
        segments = [Segment(start / 1000, end / 1000, t.text, emotion=t.emotion, events=t.events,
                            language=t.language) for (start, end), t in zip(spans, tagged)]
        records: list[dict[str, Any]] = [{"start": start, "end": end} for start, end in spans]
        if self.model.punc_model is not None and any(t.text for t in tagged):
            started = time.perf_counter()
            sentence_records = self._punctuated_sentences(results, [t.text for t in tagged])
            timings.punc_s += time.perf_counter() - started
            if sentence_records:
                records = sentence_records
                segments = [Segment(s["start"] / 1000, s["end"] / 1000, s["text"]) for s in sentence_records]
        if self.model.spk_model is not None and results:
            started = time.perf_counter()
            for segment, record in zip(segments, self._place_speakers(results, records)):
                segment.speaker = str(record["spk"])
            timings.spk_s += time.perf_counter() - started
        return [s for s in segments if s.text]

    def _punctuated_sentences(self, results: list[SegmentResult], texts: list[str]) -> list[dict[str, Any]]:
        """Punctuate the whole file's tokens at once, then cut sentences at marks and pauses."""
        tokens = [Token(text, ts[0], ts[1], region)
                  for region, (result, clean) in enumerate(zip(results, texts))
                  for text, ts in zip(clean.split(), result.timestamps)]
        if not tokens or any(len(t.split()) != len(r.timestamps) for t, r in zip(texts, results)):
            log.debug("engine.punc_unaligned", tokens=len(tokens))
            return []  # no token times to split on: keep one segment per speech region
        output = self.model.inference(" ".join(t.text for t in tokens), model=self.model.punc_model,
                                      kwargs=self.model.punc_kwargs, **self._options())[0]
        punc_ids = [int(p) for p in output.get("punc_array", [])]
        if len(punc_ids) != len(tokens):
            log.debug("engine.punc_unaligned", tokens=len(tokens), marks=len(punc_ids))
            return []
        return [{"start": s.start_ms, "end": s.end_ms, "text": s.text} for s in split_sentences(tokens, punc_ids)]

    def _place_speakers(self, results: list[SegmentResult], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Cluster speaker embeddings across the whole file, then label each record by overlap."""
        from funasr.models.campplus.utils import distribute_spk, postprocess

        chunks = sorted((c for r in results for c in r.speaker_chunks), key=lambda c: c[0])
        embeddings = self._torch.cat([r.embeddings for r in results], dim=0)
        labels = self.model.cb_model(embeddings.cpu(), oracle_num=self.config.model.num_speakers)
        turns = postprocess(chunks, None, labels, embeddings.detach().cpu().numpy())
        return distribute_spk([dict(r) for r in records], turns)

    # --- one job ---------------------------------------------------------------------------

    def transcribe(self, samples: np.ndarray, source: SourceInfo, on_progress: ProgressCallback | None = None,
                   on_stage: Callable[[str], None] | None = None) -> Transcript:
        """Run the whole pipeline over one file's 16 kHz mono samples; on_stage hears when ASR and
        the finishing steps start (VAD on a long file takes minutes without progress)."""
        stage = on_stage or (lambda _name: None)
        if not self.loaded:
            self.load()
        started = time.perf_counter()
        timings = Timings()
        self.model._reset_runtime_configs()  # as generate() does: no option leaks from the last job
        try:
            with captured_output():
                vad_started = time.perf_counter()
                regions = self.detect_speech(samples)
                timings.vad_s = time.perf_counter() - vad_started
                stage(RECOGNISING)
                results = self.recognise(samples, regions, timings, on_progress)
                stage(FINISHING)
                segments = self.sentences(samples, results, timings)
        finally:
            devices.empty_cache(self.device, self._torch)
        duration_s = len(samples) / 16000
        languages = [s.language for s in segments if s.language and s.language != "nospeech"]
        transcript = Transcript(
            source=source,
            segments=segments,
            language=max(set(languages), key=languages.count) if languages else _configured_language(self.config),
            model={"preset": self.config.model.preset, **self.config.models(),
                   "rich_tags": self.config.model.rich_tags},  # the renderers read it (asrd.output)
            device=self.device,
            duration_s=duration_s,
            processing_s=time.perf_counter() - started,
            stats={"timings": timings.as_dict(), "speech_regions": len(regions)},
        )
        transcript.stats["speech"] = speech_stats(transcript)
        return transcript


CUDA_BATCH_MS = 300_000  # FunASR's default batch_size_s (300 s of padded audio per call)
CPU_BATCH_MS = 60_000  # FunASR's README batch_size_s for SenseVoice: fuller CPU calls, faster matrix products


FUNASR_ALONE_MS = 60_000  # FunASR's batch_size_threshold_s: a region this long goes in a call of its own


def funasr_batches(regions: list[tuple[int, int]], batch_ms: int) -> list[list[int]]:
    """Region indices grouped as FunASR's `inference_with_vad` groups them (funasr/auto/auto_model.py):
    shortest first (stable); a group closes after the region that brings its padded length (longest
    x count) to batch_ms or more, after a region of FUNASR_ALONE_MS or more, and at the end."""
    order = sorted(range(len(regions)), key=lambda i: regions[i][1] - regions[i][0])
    if order:
        batch_ms = max(batch_ms, regions[order[0]][1] - regions[order[0]][0])
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for n, i in enumerate(order):
        length = regions[i][1] - regions[i][0]
        current.append(i)
        longest = max(longest, length)
        if n < len(order) - 1 and length < FUNASR_ALONE_MS and longest * len(current) < batch_ms:
            continue
        batches.append(current)
        current, longest = [], length
    return batches


def length_batches(regions: list[tuple[int, int]], cap_ms: int) -> list[list[int]]:
    """Region indices grouped shortest-first so that no group's padded length (its longest region
    times its size) passes cap_ms; a region longer than the cap goes alone; cap_ms <= 0: one each."""
    if cap_ms <= 0:
        return [[i] for i in range(len(regions))]
    order = sorted(range(len(regions)), key=lambda i: regions[i][1] - regions[i][0])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = regions[i][1] - regions[i][0]  # sorted: the newest is the longest
        if current and longest * (len(current) + 1) > cap_ms:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def _configured_language(config: Config) -> str | None:
    """The language when the model does not name one: the configured one, else the preset's own
    (paraformer-zh speaks only Mandarin) while its ASR model is the one in use."""
    if config.model.language != "auto":
        return config.model.language
    preset = PRESETS[config.model.preset]
    return preset.language if config.models()["asr"] == preset.asr else None
