"""A run folder: its checkpoints, what a new run does with an earlier one, and the effective config.

A run is never deleted by a new run. `plan_run_dir` decides, changing nothing, whether a run may start in
its folder: a folder holding an earlier run's artifacts (`RUN_ARTIFACTS`) is refused unless the run
resumes it (`--resume`, which needs a checkpoint) or moves it aside (`--overwrite`: the whole folder is
renamed to `<name>.previous-N/`, the first free N). `prepare_run_dir` carries the plan out.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from shala_lib.environment import git_commit, package_versions
from shala_lib.files import write_text_atomic
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
    """The `checkpoint-N` folder with the highest N (other names under `checkpoint-*` are not checkpoints)."""
    ckpts = sorted(
        (p for p in run_dir.glob("checkpoint-*") if p.is_dir() and p.name.split("-", 1)[1].isdigit()),
        key=checkpoint_step,
    )
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
# what else a run writes into its folder (README.md: TRL's model card); a folder holding something else
# and no run artifact is not a run folder, and no run starts in it
RUN_FILES: tuple[str, ...] = (*RUN_ARTIFACTS, "experiment.yaml", "effective_config.yaml", "README.md")
IfExists = Literal["refuse", "overwrite", "resume"]
IF_EXISTS: tuple[str, ...] = ("refuse", "overwrite", "resume")


class RunExistsError(RuntimeError):
    """A run folder that a new run may not start in (an earlier run, or a folder that is not a run's);
    the message names the folder and the choices."""


@dataclass(frozen=True)
class RunPlan:
    """What a run does with its folder: start `fresh` in it (absent, or holding no run artifact), move an
    earlier run aside to `moved_to` first (`overwrite`), or `resume` from `checkpoint`."""

    run_dir: Path
    action: Literal["fresh", "overwrite", "resume"]
    checkpoint: Path | None = None
    moved_to: Path | None = None
    earlier: tuple[str, ...] = ()


def run_artifacts(run_dir: Path) -> list[Path]:
    """The run artifacts (`RUN_ARTIFACTS`) in `run_dir`, sorted."""
    if not run_dir.is_dir():
        return []
    return sorted({p for pattern in RUN_ARTIFACTS for p in run_dir.glob(pattern)})


def foreign_entries(run_dir: Path) -> list[str]:
    """What `run_dir` holds that no run writes (hidden names, such as temporary and lock files, aside)."""
    if not run_dir.is_dir():
        return []
    return sorted(
        p.name
        for p in run_dir.iterdir()
        if not p.name.startswith(".") and not any(p.match(pattern) for pattern in RUN_FILES)
    )


def previous_run_dir(run_dir: Path) -> Path:
    """Where `--overwrite` moves an earlier run: `<name>.previous-N` beside it, the first free N from 1."""
    n = 1
    while (run_dir.parent / f"{run_dir.name}.previous-{n}").exists():
        n += 1
    return run_dir.parent / f"{run_dir.name}.previous-{n}"


def _choices(run_dir: Path) -> str:
    return (
        f"choose one: --resume (continue from its last checkpoint), --overwrite (move it aside to "
        f"{previous_run_dir(run_dir).name}/ and start again; nothing is deleted), or another name "
        "(--set name=...)"
    )


def plan_run_dir(run_dir: Path, if_exists: str = "refuse") -> RunPlan:
    """Decide, without changing anything, what a run does with `run_dir` (`if_exists`: refuse | overwrite |
    resume). Raises RunExistsError when it may not start: an earlier run there and `refuse`; `resume` with
    no checkpoint to resume from; a path that is not a run folder (a file, or a folder holding other things
    and no run artifact, such as `runs/` itself). An earlier run is moved aside whole, with anything else in
    its folder."""
    if if_exists not in IF_EXISTS:
        raise ValueError(f"if_exists must be one of {IF_EXISTS}, got {if_exists!r}")
    if run_dir.exists() and not run_dir.is_dir():
        raise RunExistsError(f"{run_dir}: the run folder's path is a file; choose another name or output_dir")
    earlier = tuple(p.name for p in run_artifacts(run_dir))
    foreign = foreign_entries(run_dir)
    if if_exists == "resume":
        ckpt = last_checkpoint(run_dir) if run_dir.is_dir() else None
        if ckpt is None:
            what = "does not exist" if not run_dir.exists() else "holds no checkpoint-*"
            raise RunExistsError(
                f"{run_dir}: --resume, but the run folder {what}: nothing to resume from. "
                "Run without --resume to start a new run"
                + (" (--overwrite to move the earlier one aside first)" if earlier else "")
            )
        return RunPlan(run_dir, "resume", checkpoint=ckpt, earlier=earlier)
    if foreign and not earlier:  # a folder with other things and no run in it: not a run folder
        raise RunExistsError(
            f"{run_dir}: not a run folder (it holds {', '.join(foreign[:8])}{', ...' if len(foreign) > 8 else ''}); "
            "a run writes only into a folder of its own: choose another name (--set name=...) or output_dir"
        )
    if not earlier:
        return RunPlan(run_dir, "fresh")
    if if_exists == "refuse":
        raise RunExistsError(
            f"{run_dir}: an earlier run is there ({', '.join(earlier)}); a new run never replaces one. "
            + _choices(run_dir)
        )
    return RunPlan(run_dir, "overwrite", moved_to=previous_run_dir(run_dir), earlier=earlier)


def prepare_run_dir(plan: RunPlan) -> Path | None:
    """Carry out `plan` (the main process only): move the earlier run aside for `overwrite` (whole, by
    rename: nothing is deleted), then create the run folder. Returns where the earlier run went."""
    moved = None
    if plan.action == "overwrite":
        moved = previous_run_dir(plan.run_dir)  # again: another run may have taken plan.moved_to since
        os.rename(plan.run_dir, moved)
        log.warning("%s: --overwrite: the earlier run (%s) moved to %s", plan.run_dir, ", ".join(plan.earlier), moved)
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    return moved


def engine_summary(args: Any, accelerator: Any = None) -> dict[str, Any]:
    """How the run is executed, read from the trainer's accelerator (else the arguments' own state): the
    accelerate distributed type, world size, backend, device, precision and, under DeepSpeed, the ZeRO
    stage and offload devices of the DeepSpeed config the trainer uses (`deepspeed: null` means none).
    The arguments' `use_cpu` / `deepspeed` fields alone do not say it: under `accelerate launch` with a
    DeepSpeed config they read `true` / `null` on CPU processes that do run ZeRO-3."""
    state = getattr(accelerator, "state", None) or getattr(args, "distributed_state", None)
    dist_type = getattr(state, "distributed_type", None)
    plugin = getattr(state, "deepspeed_plugin", None) if state is not None else None
    plugin = plugin or getattr(args, "deepspeed_plugin", None)
    deepspeed = None
    if plugin is not None and str(getattr(dist_type, "value", dist_type)) == "DEEPSPEED":
        from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

        ds = plugin.hf_ds_config
        zero = ds.config.get("zero_optimization", {})

        def device(key: str) -> str:
            return str((zero.get(key) or {}).get("device") or "none")

        optim = getattr(args, "optim", None)
        config_file = getattr(args, "deepspeed", None)
        if not isinstance(config_file, str):  # accelerate launch: its config's deepspeed_config_file
            config_file = os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE")
        deepspeed = {
            "zero_stage": zero.get("stage", 0),
            "offload_optimizer_device": device("offload_optimizer"),
            "offload_param_device": device("offload_param"),
            "param_persistence_threshold": zero.get("stage3_param_persistence_threshold"),
            "zero3_init": is_deepspeed_zero3_enabled(),  # models load partitioned (deepspeed.zero.Init)
            "bf16": bool(ds.config.get("bf16", {}).get("enabled", False)),
            "fp16": bool(ds.config.get("fp16", {}).get("enabled", False)),
            # the config's own optimizer, else the Trainer's (args.optim) wrapped by DeepSpeed
            "optimizer": (ds.config.get("optimizer") or {}).get("type") or str(getattr(optim, "value", optim)),
            "config_file": config_file,
        }
    return {
        "distributed_type": str(getattr(dist_type, "value", dist_type)) if dist_type is not None else None,
        "world_size": int(getattr(state, "num_processes", world_size())),
        "backend": getattr(state, "backend", None),
        "device": str(getattr(state, "device", "")) or None,
        "precision": {
            "mixed_precision": str(getattr(accelerator, "mixed_precision", getattr(state, "mixed_precision", "no"))),
            "bf16": bool(getattr(args, "bf16", False)),
            "fp16": bool(getattr(args, "fp16", False)),
            "weights_dtype": str((getattr(args, "model_init_kwargs", None) or {}).get("dtype", "float32")),
        },
        "deepspeed": deepspeed,
    }


def write_effective_config(
    cfg: ExperimentConfig, args: Any, setup: ModelSetup | None = None, accelerator: Any = None
) -> Path:
    """`effective_config.yaml`: the experiment, the model, the full effective GRPOConfig, the engine
    (`engine_summary`: distributed type, world size, precision, DeepSpeed stage and offload), versions."""
    eff = {k: v for k, v in args.to_dict().items() if isinstance(v, str | int | float | bool | list | dict | None)}
    doc = {
        "experiment": cfg.to_dict(),
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
        "engine": engine_summary(args, accelerator),
        "versions": package_versions(),
        "git": git_commit(),  # the checkout's commit and whether it had local changes
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
    return write_text_atomic(cfg.run_dir / "effective_config.yaml", yaml.safe_dump(doc, sort_keys=False))
