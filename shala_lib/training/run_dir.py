"""A run folder: its checkpoints, what a new run clears, and the effective config written into it."""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from shala_lib.training.config import ExperimentConfig
from shala_lib.training.distributed import world_size
from shala_lib.training.grpo_args import completions_per_optimizer_step, paper_settings, prompts_per_optimizer_step

if TYPE_CHECKING:
    from shala_lib.training.inputs import ModelSetup

log = logging.getLogger(__name__)


def checkpoint_step(path: Path) -> int:
    """The optimizer step of a `checkpoint-N` folder."""
    return int(path.name.split("-")[-1])


def last_checkpoint(run_dir: Path) -> Path | None:
    ckpts = sorted(run_dir.glob("checkpoint-*"), key=checkpoint_step)
    return ckpts[-1] if ckpts else None


RUN_ARTIFACTS: tuple[str, ...] = (
    "checkpoint-*",
    "final",
    "metrics.csv",
    "completions.parquet",
    "completions.rank*.parquet",
    "predictions_*.jsonl",
    "predictions_*.meta.json",
    "metrics_*.json",
    "runs",
)


def clear_previous_run(run_dir: Path) -> list[Path]:
    """A new (not resumed) run must not mix with an earlier one under the same name: its checkpoints
    would be resumed from, its metrics and completions appended to, and its test predictions reused
    for the new model. Removes them, with a warning naming what went; returns the removed paths."""
    removed = sorted({p for pattern in RUN_ARTIFACTS for p in run_dir.glob(pattern)})
    if removed:
        log.warning(
            "%s: new run (not --resume): removing the previous run's %s", run_dir, ", ".join(p.name for p in removed)
        )
    for p in removed:
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()
    return removed


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for pkg in ("trl", "transformers", "torch", "accelerate", "datasets", "deepspeed", "peft"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def write_effective_config(cfg: ExperimentConfig, args: Any, setup: ModelSetup | None = None) -> Path:
    eff = {k: v for k, v in args.to_dict().items() if isinstance(v, str | int | float | bool | list | dict | None)}
    doc = {
        "experiment": asdict(cfg),
        "model": {
            "name": cfg.model,
            "family": setup.family if setup else None,
            # what was loaded: the Omni thinker, or a causal LM
            "class": "Qwen2_5OmniThinkerForConditionalGeneration" if setup and setup.omni else "AutoModelForCausalLM",
            "modality": setup.modality if setup else "text",
            "processor": setup.processor_kind if setup else None,
            "system_prompt": setup.system if setup else None,
        },
        "grpo_effective": eff,
        "world_size": world_size(),
        "versions": _versions(),
        "notes": {
            "loss_type": args.loss_type,
            "scale_rewards": args.scale_rewards,
            "importance_sampling_level": args.importance_sampling_level,
            "epsilon": args.epsilon,
            "mask_truncated_completions": args.mask_truncated_completions,
            "num_train_epochs": args.num_train_epochs,
            "max_steps": args.max_steps,
            "use_vllm": args.use_vllm,
            "generation_batch_size": args.generation_batch_size,
            "completions_per_optimizer_step": completions_per_optimizer_step(args),
            "prompts_per_optimizer_step": prompts_per_optimizer_step(args),
            "keep_checkpoints": cfg.keep_checkpoints,
        },
        "paper_settings": paper_settings(cfg, args),
    }
    path = cfg.run_dir / "effective_config.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
