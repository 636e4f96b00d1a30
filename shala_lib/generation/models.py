"""Load causal LMs and tokenizers: Hub ids, local directories, and the embedded SmolLM2 default
(`generation.embedded`); chat-template rendering is `generation.chat`."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from shala_lib.generation.embedded import EMBEDDED, ModelUnavailableError, embedded_model_dir

log = logging.getLogger(__name__)

PAPER_MODEL = "Qwen/Qwen2.5-Omni-7B"


def resolve_model(name_or_path: str) -> str:
    """`embedded:...` -> converted local dir; an existing path -> itself; else a Hub id."""
    if name_or_path.startswith("embedded:"):
        if name_or_path != EMBEDDED:
            raise ValueError(f"unknown embedded model {name_or_path!r}; use {EMBEDDED!r}")
        return str(embedded_model_dir())
    return name_or_path


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def pick_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {
        "float32": torch.float32,
        "fp32": torch.float32,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
    }[dtype]


def load_tokenizer(name_or_path: str) -> Any:
    from transformers import AutoTokenizer

    path = resolve_model(name_or_path)
    with explained_load_errors(path):
        tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(
    name_or_path: str,
    dtype: str | torch.dtype = "auto",
    device: str = "auto",
    **kwargs: Any,
) -> tuple[Any, Any]:
    """(model, tokenizer) from a Hub id, a local directory or `EMBEDDED`; bf16 on GPU, fp32 on CPU.
    Qwen2.5-Omni checkpoints (detected from `config.model_type`) load as their thinker
    (`shala_lib.generation.omni`); every other model as `AutoModelForCausalLM`."""
    from transformers import AutoModelForCausalLM

    from shala_lib.generation.omni import load_thinker, model_family

    dev = pick_device(device)
    path = resolve_model(name_or_path)
    tok = load_tokenizer(name_or_path)
    with explained_load_errors(path):
        if model_family(path) == "omni":
            model = load_thinker(path, dtype=pick_dtype(dtype, dev), **kwargs)
        else:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=pick_dtype(dtype, dev), **kwargs)
    model.to(dev)
    model.eval()
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tok.pad_token_id
    return model, tok


@contextmanager
def explained_load_errors(path: str) -> Iterator[None]:
    """An OSError while loading `path` becomes a `ModelUnavailableError` saying where it looked (local
    directory or Hub), what offline mode means, and the embedded default."""
    try:
        yield
    except OSError as e:
        raise ModelUnavailableError(_offline_hint(path, e)) from e


def _offline_hint(path: str, err: Exception) -> str:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1"
    where = "a local directory" if Path(path).exists() else "the Hugging Face Hub"
    return (
        f"could not load {path!r} from {where}: {err}. "
        + (
            "Offline mode is on (HF_HUB_OFFLINE=1): download it first with `huggingface-cli download "
            f"{path}` on a machine with internet, or pass a local directory. "
            if offline
            else ""
        )
        + f"The embedded offline default is {EMBEDDED!r}."
    )
