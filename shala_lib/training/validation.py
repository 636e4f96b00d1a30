"""Scoring a model during and after training: validation metrics, the final test-split evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shala_lib.data.specs import DatasetSpec, get_spec
from shala_lib.generation.models import resolve_model
from shala_lib.training.config import ExperimentConfig
from shala_lib.training.inputs import load_table


def validation_metrics(
    model: Any,
    tokenizer: Any,
    spec: DatasetSpec,
    prompts: list[str],
    prefill: str,
    targets: np.ndarray,
    constrained: bool = False,
    grammar: str = "json",
    clips: list[str] | None = None,
    processor: Any = None,
) -> dict[str, float]:
    """Greedy decoding on held-out prompts (with their clips for speech): mean JSD (unparsable scored
    uniform), parse rate, and the collapse statistics (distinct answers, JSD against the best constant)."""
    import torch
    from transformers import LogitsProcessorList

    from shala_lib.generation.constrained import JsonDistributionProcessor
    from shala_lib.generation.inference import generate_hf
    from shala_lib.generation.omni import is_omni, placeholder_token_ids
    from shala_lib.generation.parsing import parse_many
    from shala_lib.scoring.collapse import collapse_stats
    from shala_lib.scoring.metrics import evaluate

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    logits_proc = (
        LogitsProcessorList([JsonDistributionProcessor(tokenizer, spec, prefill, grammar)]) if constrained else None
    )
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        # dynamic cache: the weights are fp32 under bf16 autocast (maybe ZeRO-3 partitioned) mid-training
        gens = generate_hf(
            model,
            tokenizer,
            prompts,
            max_new_tokens=64,
            batch_size=64,
            cache="dynamic",
            progress=False,
            logits_processor=logits_proc,
            clips=clips,
            processor=processor,
            suppress_tokens=placeholder_token_ids(model) if is_omni(model) else None,
        )
    if was_training:
        model.train()
    pred, statuses = parse_many([prefill + g.text for g in gens], spec)
    res = evaluate(pred, targets, spec.classes)
    col = collapse_stats(pred, targets)
    return {
        "val_jsd": res["jsd"],
        "val_parse_rate": res["parse_rate"],
        "val_n_distinct": col["n_distinct"],
        "val_max_class_std": col["max_class_std"],
        "val_jsd_vs_best_constant": col["jsd_vs_best_constant"],
    }


def evaluate_checkpoint(cfg: ExperimentConfig, model_dir: Path, table: pd.DataFrame | None = None) -> dict[str, Any]:
    """Greedy test-split predictions of a checkpoint (as the paper), stored like zero-shot ones."""
    from shala_lib.data.loading import first_items
    from shala_lib.generation.inference import predict
    from shala_lib.generation.models import load_model
    from shala_lib.generation.predictions import attach_gold
    from shala_lib.scoring.collapse import collapse_stats, warn_if_collapsed
    from shala_lib.scoring.metrics import evaluate

    spec = get_spec(cfg.dataset)
    table = load_table(cfg) if table is None else table
    items = table[table["split"] == cfg.eval_split]
    items = first_items(items, cfg.max_eval_items)
    if cfg.lora:  # final/ holds the adapter only
        from peft import PeftModel

        base, tok = load_model(resolve_model(cfg.model), device=cfg.device)
        model = PeftModel.from_pretrained(base, str(model_dir)).merge_and_unload()
    else:
        model, tok = load_model(str(model_dir), device=cfg.device)
    out = cfg.run_dir / f"predictions_{cfg.eval_split}.jsonl"
    preds = predict(
        items,
        spec,
        model,
        tok,
        out,
        method=cfg.method,
        model_name=cfg.name,
        variant=cfg.prompt_variant,
        prefill=cfg.prefill,
        batch_size=cfg.eval_batch_size,
        max_new_tokens=int(cfg.grpo.get("max_completion_length", 128)),
        constrained=cfg.constrained_eval,
        grammar=cfg.grammar,
        modality=cfg.modality or spec.modality,  # type: ignore[arg-type]
    )
    pred, gold, _ = attach_gold(preds, items, spec.n_classes)
    collapse = collapse_stats(pred, gold)
    warn_if_collapsed(collapse, f"{cfg.name} ({cfg.eval_split} split)")
    metrics = {**evaluate(pred, gold, spec.classes), **collapse}
    (cfg.run_dir / f"metrics_{cfg.eval_split}.json").write_text(json.dumps(metrics, indent=2))
    return metrics
