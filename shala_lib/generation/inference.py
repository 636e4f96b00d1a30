"""Batched, resumable inference that writes a predictions table (paper: greedy decoding).

Fast path for plain transformers: prompts sorted by length (little padding), left padding,
large batches. `cache="static"` gives every batch of a `predict` call one shape (rows and padded
prompt length fixed for the whole call, chunks included; a short last batch is filled with
discarded rows), so the static cache and the decode step transformers compiles for it on an
accelerator are built once per call: an earlier static path that let shapes vary recompiled per
batch and lost to the dynamic cache on an H100 (see README). `cache="auto"` takes the static
cache on CUDA (compiled decode step) and the dynamic one on CPU, where compiling does not help
(measured: README, "Inference speed"). vLLM is used only when asked for (`backend="vllm"`).

Greedy means greedy: a model's `generation_config` can carry sampling and penalty knobs
(Qwen2.5-Instruct ships `repetition_penalty=1.05`), and transformers applies them to every value a
`generate` call leaves unset. Generation here runs with a neutral config holding only the model's
special tokens (`neutral_generation_config`); the vLLM path sets every knob to neutral as well.

Speech (`modality` "speech" or "speech+text", the paper's MSP-Podcast setting) runs on Qwen2.5-Omni's
thinker through the same `predict` and predictions table: each prompt carries its clip, the processor
(`shala_lib.generation.omni.load_processor`) turns clip and text into `input_features` + expanded audio tokens,
batches are sorted by prompt-plus-audio length, the dynamic cache is used, and the audio, image and
video placeholder tokens are suppressed in generation. Clips longer than the 30 s feature window are
counted and reported (`audio.ClipReport`), in the log and in the sidecar.

Every output goes through `shala_lib.generation.parsing`; unparsable ones are kept with their status.
Rows are appended to a JSONL file batch by batch, so an interrupted run resumes where it
stopped and never recomputes finished ids. Beside each predictions file, `<name>.meta.json` holds
its fingerprint (model, weights checksum, prompt variant, prefill, constrained decoding, backend,
decoding settings, max new tokens): a run whose fingerprint differs never resumes that file; it
is set aside as `<name>.stale-N.jsonl` with a warning naming what changed, and a fresh one begins.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from shala_lib.data.prompts import Variant, build_messages, max_new_tokens_for, prefill_text
from shala_lib.data.specs import DatasetSpec, Modality
from shala_lib.files import write_text_atomic
from shala_lib.generation.chat import format_prompt
from shala_lib.generation.parsing import USABLE, parse_distribution
from shala_lib.generation.predictions import (
    drop_partial_last_line,
    read_predictions,
    set_aside_if_changed,
    sidecar_path,
)

log = logging.getLogger(__name__)
Backend = Literal["hf", "vllm"]
Cache = Literal["auto", "dynamic", "static"]


@dataclass
class Generation:
    text: str
    n_tokens: int
    latency_s: float


# generation_config entries that are not decoding knobs: kept when the rest is neutralised
_NOT_KNOBS = ("eos_token_id", "pad_token_id", "bos_token_id", "decoder_start_token_id", "compile_config")
# the knobs whose neutral values a predictions file records (what greedy decoding ran with)
DECODING_KNOBS = (
    "do_sample",
    "num_beams",
    "temperature",
    "top_k",
    "top_p",
    "min_p",
    "typical_p",
    "repetition_penalty",
    "no_repeat_ngram_size",
    "length_penalty",
    "min_new_tokens",
    "bad_words_ids",
    "suppress_tokens",
    "begin_suppress_tokens",
    "sequence_bias",
)


@contextmanager
def neutral_generation_config(model: Any) -> Iterator[None]:
    """Swap the model's generation config for one holding only its special tokens (and compile
    config), so every decoding knob is transformers' neutral default; restored afterwards. What the
    model's own config had that this overrides: `model_decoding_defaults`."""
    from transformers import GenerationConfig

    own = model.generation_config
    neutral = GenerationConfig(**{k: getattr(own, k) for k in _NOT_KNOBS if getattr(own, k, None) is not None})
    model.generation_config = neutral
    try:
        yield
    finally:
        model.generation_config = own


def neutral_knobs() -> dict[str, Any]:
    """transformers' global defaults for the decoding knobs (greedy, no penalty, no filter)."""
    from transformers import GenerationConfig

    defaults = GenerationConfig()._get_default_generation_params()
    return {k: defaults.get(k) for k in DECODING_KNOBS}


def model_decoding_defaults(config: Any) -> dict[str, Any]:
    """The decoding knobs a model's generation config sets away from transformers' neutral defaults
    (e.g. Qwen2.5-Instruct's repetition_penalty 1.05): what evaluation overrides."""
    neutral = neutral_knobs()
    return {
        k: getattr(config, k)
        for k in DECODING_KNOBS
        if getattr(config, k, None) is not None and getattr(config, k) != neutral[k]
    }


def greedy_settings(backend: Backend = "hf") -> dict[str, Any]:
    """The decoding settings of an evaluation run, as recorded beside its predictions."""
    return dict(VLLM_GREEDY) if backend == "vllm" else neutral_knobs()


# vLLM's greedy: temperature 0 and every penalty/filter neutral (its engine is also built with
# generation_config="vllm", so the model's own generation_config.json supplies no defaults)
VLLM_GREEDY: dict[str, Any] = {
    "temperature": 0.0,
    "top_p": 1.0,
    "top_k": -1,
    "min_p": 0.0,
    "repetition_penalty": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
}


def weights_checksum(model: Any) -> str:
    """A short hash of every parameter's sum and shape: different weights (another checkpoint, a
    merged adapter under the base model's name) give a different checksum."""
    h = hashlib.sha256()
    with torch.no_grad():
        for name, p in model.named_parameters():
            h.update(f"{name}:{tuple(p.shape)}:{float(p.sum(dtype=torch.float64)):.9e};".encode())
    return h.hexdigest()[:16]


def _batches(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def resolve_cache(model: Any, cache: Cache) -> Literal["dynamic", "static"]:
    """`auto`: the static cache (compiled decode step) for a bf16/fp16 model on CUDA outside autocast,
    the dynamic cache otherwise (CPU, where compiling does not help; fp32 weights under autocast,
    where a static cache of the weights' dtype cannot take the bf16 keys and values)."""
    if cache not in ("auto", "dynamic", "static"):
        raise ValueError(f"cache must be 'auto', 'dynamic' or 'static', not {cache!r}")
    if cache != "auto":
        return cache
    param = next(model.parameters())
    half = param.dtype in (torch.bfloat16, torch.float16)
    on_cuda = param.device.type == "cuda" and not torch.is_autocast_enabled("cuda")
    return "static" if half and on_cuda else "dynamic"


def prompt_lengths(tokenizer: Any, prompts: Sequence[str]) -> np.ndarray:
    return np.array([len(tokenizer(p, add_special_tokens=False).input_ids) for p in prompts], dtype=int)


def static_shape(lengths: np.ndarray, batch_size: int) -> tuple[int, int]:
    """(rows, padded length) for every batch of a static-cache call: the length rounded up to 64."""
    if len(lengths) == 0:
        raise ValueError("static_shape needs at least one prompt")
    return min(batch_size, len(lengths)), int(-(-int(lengths.max()) // 64) * 64)


@torch.inference_mode()
def generate_hf(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    max_new_tokens: int,
    batch_size: int = 32,
    greedy: bool = True,
    cache: Cache = "auto",
    sort_by_length: bool = True,
    logits_processor: Any = None,
    progress: bool = True,
    temperature: float = 1.0,
    shape: tuple[int, int] | None = None,
    clips: Sequence[str] | None = None,
    processor: Any = None,
    suppress_tokens: Sequence[int] | None = None,
) -> list[Generation]:
    """Generate for many prompts with HF `generate`: length-sorted batches, left padding.

    With the static cache every batch has one (rows, padded length) shape: `shape`, when the
    caller fixes it across calls (`predict` does, over its chunks), else `static_shape` of these
    prompts.

    Speech: `clips` holds one clip path per prompt (each prompt has one audio placeholder) and
    `processor` encodes clip and text together (`shala_lib.generation.omni`); lengths count the audio tokens,
    and the cache is dynamic. `suppress_tokens` are never generated.
    """
    if not prompts:
        return []
    if clips is not None and (processor is None or len(clips) != len(prompts)):
        raise ValueError("speech generation needs a processor and one clip per prompt")
    tokenizer.padding_side = "left"
    lengths = prompt_lengths(tokenizer, prompts)
    if clips is not None:
        from shala_lib.data.audio import clip_seconds, feature_window
        from shala_lib.generation.omni import audio_token_count

        window = feature_window(processor)
        frames = np.array([window.frames(clip_seconds(c)) for c in clips])
        lengths = lengths + audio_token_count(np.maximum(frames, 1))
        cache = "dynamic"
    order = np.argsort(-lengths, kind="stable") if sort_by_length else np.arange(len(prompts))
    device = next(model.parameters()).device
    use_static = resolve_cache(model, cache) == "static"
    fixed_rows, fixed_len = (shape or static_shape(lengths, batch_size)) if use_static else (None, None)
    if use_static and (fixed_len < lengths.max() or fixed_rows < min(batch_size, len(prompts))):
        raise ValueError(
            f"static shape {(fixed_rows, fixed_len)} is smaller than this call's prompts "
            f"({min(batch_size, len(prompts))} rows, {int(lengths.max())} tokens)"
        )
    eos = model.generation_config.eos_token_id
    eos_ids = set(eos) if isinstance(eos, list) else {eos}
    out: list[Generation | None] = [None] * len(prompts)
    bar = tqdm(total=len(prompts), desc="generate", unit="item", disable=not progress)
    for idx in _batches(order, fixed_rows or batch_size):
        batch = [prompts[i] for i in idx]
        if fixed_rows is not None and len(batch) < fixed_rows:
            batch += [batch[-1]] * (fixed_rows - len(batch))  # filler rows, outputs discarded
        if clips is not None:
            from shala_lib.data.audio import read_audio
            from shala_lib.generation.omni import encode

            enc = encode(processor, batch, [read_audio(clips[i]) for i in idx]).to(device)
            enc["input_features"] = enc["input_features"].to(next(model.parameters()).dtype)
        else:
            enc = tokenizer(
                batch,
                return_tensors="pt",
                padding="max_length" if use_static else True,
                max_length=fixed_len,
                add_special_tokens=False,
            ).to(device)
        kwargs: dict[str, Any] = dict(
            max_new_tokens=max_new_tokens, do_sample=not greedy, pad_token_id=tokenizer.pad_token_id
        )
        if suppress_tokens:
            kwargs["suppress_tokens"] = list(suppress_tokens)
        if not greedy:
            kwargs.update(temperature=temperature)
        if use_static:
            kwargs["cache_implementation"] = "static"
        if logits_processor is not None:
            for proc in logits_processor:
                if hasattr(proc, "reset"):
                    proc.reset()  # per-batch state (prompt length)
            kwargs["logits_processor"] = logits_processor
        t0 = time.perf_counter()
        with neutral_generation_config(model):
            gen = model.generate(**enc, **kwargs)
        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        new = gen[:, enc["input_ids"].shape[1] :]
        for row, i in enumerate(idx):
            ids = new[row].tolist()
            n = len(ids)
            for k, t in enumerate(ids):
                if t in eos_ids or t == tokenizer.pad_token_id:
                    n = k + (1 if t in eos_ids else 0)
                    break
            text = tokenizer.decode(ids[:n], skip_special_tokens=True)
            out[i] = Generation(text=text, n_tokens=n, latency_s=dt / len(idx))
        bar.update(len(idx))
    bar.close()
    return [g for g in out if g is not None]


def vllm_engine(model_path: str) -> Any:
    """A vLLM engine for a model directory or Hub id (GPU, when vLLM is installed); build it once."""
    from vllm import LLM  # type: ignore[import-not-found]

    # generation_config="vllm": defaults from vLLM, not from the model's generation_config.json
    return LLM(model=model_path, dtype="bfloat16", generation_config="vllm")


def generate_vllm(
    engine: Any, prompts: Sequence[str], max_new_tokens: int, greedy: bool = True, progress: bool = True
) -> list[Generation]:
    """Generate with a vLLM engine (`vllm_engine`): continuous batching and CUDA graphs."""
    from vllm import SamplingParams  # type: ignore[import-not-found]

    params = SamplingParams(max_tokens=max_new_tokens, **{**VLLM_GREEDY, "temperature": 0.0 if greedy else 1.0})
    t0 = time.perf_counter()
    res = engine.generate(list(prompts), params, use_tqdm=progress)
    dt = (time.perf_counter() - t0) / max(len(prompts), 1)
    return [Generation(r.outputs[0].text, len(r.outputs[0].token_ids), dt) for r in res]


def predictions_fingerprint(
    model: Any,
    model_name: str,
    variant: str,
    prefill: str,
    constrained: bool | str,
    backend: Backend,
    max_new_tokens: int,
    modality: str = "text",
) -> dict[str, Any]:
    """What a predictions file's rows depend on: a file is resumed only under the same fingerprint."""
    fp = {
        "modality": modality,
        "model": model_name,
        "model_path": str(getattr(model, "name_or_path", "") or ""),
        "weights": weights_checksum(model),
        "variant": variant,
        "prefill": prefill,
        "constrained": constrained,
        "backend": backend,
        "max_new_tokens": int(max_new_tokens),
        "decoding": greedy_settings(backend),
    }
    return json.loads(json.dumps(fp))  # as it reads back from the sidecar


def predict(
    items: pd.DataFrame,
    spec: DatasetSpec,
    model: Any,
    tokenizer: Any,
    out_path: str | Path,
    method: str = "zero_shot",
    model_name: str = "",
    variant: Variant = "paper",
    prefill: bool = False,
    batch_size: int = 32,
    max_new_tokens: int | None = None,
    backend: Backend = "hf",
    cache: Cache = "auto",
    constrained: bool = False,
    chunk_size: int | None = None,
    progress: bool = True,
    grammar: str = "json",
    modality: Modality | None = None,
    processor: Any = None,
) -> pd.DataFrame:
    """Predict a distribution for every item (greedy), appending rows to `out_path` (JSONL) as
    batches finish; `<stem>.meta.json` beside it records the fingerprint and decoding settings.

    `modality` defaults to the dataset's (`spec.modality`: speech+text for MSP-Podcast); speech needs a
    model that hears (Qwen2.5-Omni) and items with `audio_path`. `processor` defaults to the model's
    (`shala_lib.generation.omni.load_processor`).

    Ids already in `out_path` are skipped (resume) when the file was made under the same
    fingerprint; otherwise it is set aside first (`set_aside_if_changed`). Returns the predictions
    of `items`, in the file's order; the file may hold more (an earlier run over other items).
    """
    if backend not in ("hf", "vllm"):
        raise ValueError(f"backend must be 'hf' or 'vllm' (vLLM only when asked for), not {backend!r}")
    if backend == "vllm" and constrained:
        raise ValueError("constrained decoding uses a transformers logits processor: use backend='hf'")
    from shala_lib.generation.omni import OMNI_SYSTEM_PROMPT, is_omni, load_processor, placeholder_token_ids

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    modality = modality or spec.modality
    speech = modality != "text"
    omni = is_omni(model)
    if speech and not omni:
        raise ValueError(
            f"{spec.name}: modality {modality!r} needs a model that hears (Qwen2.5-Omni); "
            f"{getattr(model, 'name_or_path', model_name)!r} is text-only: pass modality='text' to run on the text"
        )
    if speech and backend == "vllm":
        raise ValueError("speech runs use transformers generation (backend='hf'); the vLLM path here is text-only")
    processor_kind = None
    if omni and processor is None:
        processor, processor_kind = load_processor(str(model.name_or_path), tokenizer)
    elif processor is not None:
        processor_kind = getattr(processor, "kind", "AutoProcessor")
    pre = prefill_text(spec) if prefill else ""
    max_new = max_new_tokens or max_new_tokens_for(variant)
    fingerprint = predictions_fingerprint(
        model, model_name, variant, pre, grammar if constrained else False, backend, max_new, modality
    )
    set_aside_if_changed(out_path, fingerprint)
    clip_report = None
    if speech:
        from shala_lib.data.audio import feature_window, survey_clips

        window_s = feature_window(processor).seconds
        _, clip_report = (
            survey_clips([str(p) for p in items["audio_path"]], window_s) if "audio_path" in items else (None, None)
        )
        if clip_report is None:
            raise KeyError(f"{spec.name}: modality {modality!r} needs an audio_path column in the items")
        clip_report.log(out_path.name)
    write_text_atomic(  # the sidecar is replaced whole; the rows below are appended line by line (resumable)
        sidecar_path(out_path),
        json.dumps(
            {
                "fingerprint": fingerprint,
                "model_defaults_overridden": model_decoding_defaults(model.generation_config),
                "cache": ("dynamic" if speech else resolve_cache(model, cache)) if backend == "hf" else "vllm",
                "processor": processor_kind,
                "system_prompt": OMNI_SYSTEM_PROMPT if omni else None,
                "clips": clip_report.as_dict() if clip_report else None,
            },
            indent=2,
        )
        + "\n",
    )
    drop_partial_last_line(out_path)
    done = set(read_predictions(out_path)["id"].astype(str))
    todo = items[~items["id"].astype(str).isin(done)]
    if len(done):
        log.info("%s: %d ids done, %d to go", out_path.name, len(done), len(todo))
    logits_proc = None
    if constrained:
        from transformers import LogitsProcessorList

        from shala_lib.generation.constrained import JsonDistributionProcessor

        logits_proc = LogitsProcessorList([JsonDistributionProcessor(tokenizer, spec, prefill=pre, grammar=grammar)])
    use_vllm = backend == "vllm"
    engine = (
        vllm_engine(str(getattr(model, "name_or_path", model_name) or model_name)) if use_vllm and len(todo) else None
    )
    chunk = chunk_size or max(batch_size * 4, 64)
    system = OMNI_SYSTEM_PROMPT if omni else None
    renderer = processor if processor is not None else tokenizer
    all_prompts = [
        format_prompt(renderer, build_messages(spec, row, variant, modality, system), pre) for _, row in todo.iterrows()
    ]
    all_clips = [str(p) for p in todo["audio_path"]] if speech else None
    suppress = placeholder_token_ids(model) if omni else None
    shape = None
    if not use_vllm and not speech and len(todo) and resolve_cache(model, cache) == "static":
        # one shape for every chunk of this call: the compiled decode step is built once
        shape = static_shape(prompt_lengths(tokenizer, all_prompts), batch_size)
    bar = tqdm(total=len(todo), desc=f"{method}/{spec.name}", unit="item", disable=not progress)
    for start in range(0, len(todo), chunk):
        part = todo.iloc[start : start + chunk]
        prompts = all_prompts[start : start + chunk]
        if use_vllm:
            gens = generate_vllm(engine, prompts, max_new, progress=False)
        else:
            gens = generate_hf(
                model,
                tokenizer,
                prompts,
                max_new,
                batch_size=batch_size,
                cache=cache,
                logits_processor=logits_proc,
                progress=False,
                shape=shape,
                clips=all_clips[start : start + chunk] if all_clips is not None else None,
                processor=processor,
                suppress_tokens=suppress,
            )
        with open(out_path, "a", encoding="utf-8") as fh:
            for item_id, g in zip(part["id"].astype(str), gens):
                res = parse_distribution(pre + g.text, spec)
                fh.write(
                    json.dumps(
                        {
                            "id": item_id,
                            "method": method,
                            "model": model_name,
                            "variant": variant,
                            "prefill": pre,
                            "raw_text": g.text,
                            "status": res.status,
                            "pred": res.dist.tolist() if res.usable else None,
                            "n_tokens": g.n_tokens,
                            "latency_s": round(g.latency_s, 6),
                        }
                    )
                    + "\n"
                )
        bar.update(len(part))
    bar.close()
    table = read_predictions(out_path)
    table = table[table["id"].astype(str).isin(set(items["id"].astype(str)))].reset_index(drop=True)
    bad = ~table["status"].isin(USABLE)
    n_bad = int(bad.sum())
    if n_bad:
        log.warning(
            "%s: %d of %d outputs unparsable: %s",
            out_path.name,
            n_bad,
            len(table),
            table.loc[bad, "status"].value_counts().to_dict(),
        )
    return table
