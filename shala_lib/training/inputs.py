"""What a run trains on: the prepared table, the TRL prompt dataset, the model family's setup, which layers train."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

from shala_lib.data.prompts import build_messages, prefill_text
from shala_lib.data.specs import DatasetSpec
from shala_lib.generation.chat import format_prompt
from shala_lib.training.config import ExperimentConfig

log = logging.getLogger(__name__)


def load_table(cfg: ExperimentConfig) -> pd.DataFrame:
    """The run's table: notebook 01's prepared table when `processed_dir` is set, else the dataset's files."""
    from shala_lib.data.loading import dataset_table

    return dataset_table(cfg.dataset, cfg.processed_dir, cfg.data_dir, cfg.seed, cfg.subset)


def build_dataset(
    table: pd.DataFrame,
    spec: DatasetSpec,
    split: str,
    cfg: ExperimentConfig,
    tokenizer: Any,
    limit: int | None = None,
    modality: str = "text",
    system: str | None = None,
) -> Any:
    """A `datasets.Dataset` with `prompt` (chat template applied, prefill appended), the target
    distribution `target` that the reward functions read, and `id` / `ambiguity_level`; for speech also
    `audio_path` (one clip per row, heard by `SpeechGRPOTrainer`). `tokenizer` renders the chat template
    (a processor for Qwen2.5-Omni); `system` opens every conversation when given."""
    from datasets import Dataset

    part = table[table["split"] == split]
    if limit is not None:
        part = part.sample(n=min(limit, len(part)), random_state=cfg.seed).sort_values("id", kind="stable")
    if len(part) == 0:
        raise ValueError(f"{cfg.dataset}: split {split!r} is empty")
    pre = prefill_text(spec) if cfg.prefill else ""
    prompts = [
        format_prompt(tokenizer, build_messages(spec, row, cfg.prompt_variant, modality, system), pre)  # type: ignore[arg-type]
        for _, row in part.iterrows()
    ]
    columns: dict[str, list[Any]] = {
        "prompt": prompts,
        "target": [list(map(float, d)) for d in part["dist"]],
        "id": part["id"].astype(str).tolist(),
        "ambiguity_level": part["ambiguity_level"].astype(str).tolist(),
    }
    if modality != "text":
        columns["audio_path"] = [str(p) for p in part["audio_path"]]
    return Dataset.from_dict(columns)


# LoRA on the Qwen2.5-Omni thinker: the language model's linear layers (PEFT matches a string as a regex)
OMNI_LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


@dataclass
class ModelSetup:
    """What the model family decides for a run: modality, prompt renderer, system prompt, processor."""

    family: str
    modality: str
    renderer: Any  # renders chat templates: the tokenizer, or the Omni processor
    system: str | None
    processor: Any = None
    processor_kind: str | None = None

    @property
    def omni(self) -> bool:
        return self.family == "omni"

    @property
    def speech(self) -> bool:
        return self.modality != "text"


def model_setup(cfg: ExperimentConfig, spec: DatasetSpec, model_path: str, tokenizer: Any) -> ModelSetup:
    """The run's modality (`cfg.modality`, else the dataset's) checked against the model family: speech
    needs Qwen2.5-Omni; an Omni model gets its processor and Qwen's system prompt."""
    from shala_lib.generation.omni import OMNI_SYSTEM_PROMPT, load_processor, model_family

    family = model_family(model_path)
    modality = cfg.modality or spec.modality
    if modality != "text" and family != "omni":
        raise ValueError(
            f"{cfg.name}: modality {modality!r} ({'the dataset default' if cfg.modality is None else 'config'}) "
            f"needs a model that hears (Qwen/Qwen2.5-Omni-7B); {cfg.model!r} is text-only: set modality: text "
            "to train on the transcripts"
        )
    if family != "omni":
        return ModelSetup(family, modality, tokenizer, None)
    processor, kind = load_processor(model_path, tokenizer)
    return ModelSetup(family, modality, processor, OMNI_SYSTEM_PROMPT, processor, kind)


def freeze_below_top_layers(model: Any, n_top: int) -> tuple[int, int]:
    """Freeze every parameter except those of the last `n_top` decoder layers (all of them when the model
    has fewer) and the final norm; returns (trainable, total) parameter counts. The decoder layers are
    found as `model.model.layers` (Llama/Qwen/SmolLM-style causal LMs) or `model.model.language_model.layers`
    (the Qwen2.5-Omni thinker, whose audio and vision towers are then frozen too)."""
    decoder = getattr(model, "model", None)
    decoder = getattr(decoder, "language_model", decoder)
    layers = getattr(decoder, "layers", None)
    if layers is None:
        raise ValueError(f"train_top_layers: {type(model).__name__} has no model.layers to choose from")
    if n_top < 1:
        raise ValueError(f"train_top_layers must be >= 1, got {n_top}")
    if n_top > len(layers):  # a model with fewer layers trains them all (the embeddings stay frozen)
        log.info("train_top_layers=%d: the model has %d decoder layers; all of them train", n_top, len(layers))
    keep = {id(p) for layer in list(layers)[-n_top:] for p in layer.parameters()}
    keep |= {id(p) for p in decoder.norm.parameters()}
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)
    return sum(p.numel() for p in model.parameters() if p.requires_grad), sum(p.numel() for p in model.parameters())


def json_processor(tokenizer: Any, spec: DatasetSpec, prefill: bool, grammar: str = "json") -> Any:
    """The logits processor that keeps generation inside the answer grammar (after the prefill)."""
    from shala_lib.generation.constrained import JsonDistributionProcessor

    return JsonDistributionProcessor(tokenizer, spec, prefill=prefill_text(spec) if prefill else "", grammar=grammar)
