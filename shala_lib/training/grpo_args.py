"""TRL `GRPOConfig` derived from an experiment, and how its settings compare with the paper's."""

from __future__ import annotations

import importlib.util
from typing import Any

from shala_lib.training.config import PAPER_PROMPTS_PER_STEP, PAPER_SOURCES, ExperimentConfig, paper_grpo
from shala_lib.training.distributed import world_size


def grpo_config(cfg: ExperimentConfig, on_cpu: bool) -> Any:
    """TRL GRPOConfig from the experiment: `prompts_per_step` prompts x num_generations rollouts
    per optimizer step, whatever the GPU count (gradient accumulation absorbs the difference)."""
    from trl import GRPOConfig

    g = dict(cfg.grpo)
    n_gen = int(g.get("num_generations", 8))
    per_device = int(g.get("per_device_train_batch_size", 8))
    if "gradient_accumulation_steps" not in g:
        total = cfg.prompts_per_step * n_gen
        denom = per_device * world_size()
        if total % denom:
            raise ValueError(
                f"{cfg.prompts_per_step} prompts x {n_gen} rollouts = {total} completions per step cannot be split "
                f"into per-device batches of {per_device} on {world_size()} process(es); change "
                "grpo.per_device_train_batch_size or prompts_per_step"
            )
        g["gradient_accumulation_steps"] = max(1, total // denom)
    g.setdefault("output_dir", str(cfg.run_dir))
    g.setdefault("seed", cfg.seed)
    g.setdefault("report_to", cfg.report_to)
    g.setdefault("remove_unused_columns", False)
    if on_cpu:
        g.update(use_cpu=True, bf16=False, fp16=False)
        g.setdefault("gradient_checkpointing", False)
    else:
        g.setdefault("bf16", True)  # autocast; weights stay fp32 (model_init_kwargs below)
    # vLLM rollouts only when asked for (grpo.use_vllm: true), never because the package is installed
    g.setdefault("use_vllm", False)
    if g["use_vllm"] and importlib.util.find_spec("vllm") is None:
        raise ValueError("grpo.use_vllm is true but vllm is not installed (pip install vllm; TRL 1.16 wants <=0.31)")
    g.setdefault("model_init_kwargs", {"dtype": "float32"})
    known = set(GRPOConfig.__dataclass_fields__)
    unknown = sorted(set(g) - known)
    if unknown:
        raise ValueError(f"grpo: unknown GRPOConfig field(s) {unknown}")
    return GRPOConfig(**g)


def paper_settings(cfg: ExperimentConfig, args: Any) -> dict[str, dict[str, Any]]:
    """Each setting of `paper_grpo()` as this run has it, with its source, and the paper's value
    where the run differs from it (so a reader sees at once what is not the paper's)."""
    paper = {**paper_grpo(), "prompts_per_step": PAPER_PROMPTS_PER_STEP}
    sources = {**PAPER_SOURCES, "prompts_per_step": "paper App. D.2 (4 prompts per optimization step)"}
    eff = {**args.to_dict(), "prompts_per_step": prompts_per_optimizer_step(args)}
    out = {}
    for key, source in sources.items():
        value = eff[key]
        out[key] = {"value": value, "source": source} if value == paper[key] else {"value": value, "paper": paper[key]}
    return out


def completions_per_optimizer_step(args: Any) -> int:
    return args.per_device_train_batch_size * world_size() * args.gradient_accumulation_steps


def prompts_per_optimizer_step(args: Any) -> int:
    return completions_per_optimizer_step(args) // args.num_generations
