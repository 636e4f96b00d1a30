"""GRPO training of SHALA, SHALA w/o Ambi-En and MLS on TRL's `GRPOTrainer`.

    python -m shala_lib.train CONFIG.yaml [--resume] [--set grpo.max_steps=10 ...]
    accelerate launch --config_file configs/accelerate_zero3.yaml --num_processes 2 \
        -m shala_lib.train CONFIG.yaml          # multi-GPU, DeepSpeed ZeRO-3

Writes into `<output_dir>/<name>/`: checkpoints (`checkpoint-N/`), `final/`, `metrics.csv`,
TensorBoard logs, `completions.parquet` (sampled completions with rewards and parse status),
`effective_config.yaml` (the experiment, the full effective GRPOConfig and package versions),
and after training the test-split predictions and metrics, like the zero-shot ones.
"""

from __future__ import annotations

import argparse
import collections
import csv
import importlib.util
import json
import logging
import math
import os
import shutil
import sys
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from shala_lib.config import PAPER_PROMPTS_PER_STEP, PAPER_SOURCES, ExperimentConfig, paper_grpo
from shala_lib.models import format_prompt, load_tokenizer, resolve_model
from shala_lib.prompts import build_messages, prefill_text
from shala_lib.rewards import make_reward_func
from shala_lib.specs import DatasetSpec, get_spec

log = logging.getLogger(__name__)


class NonFiniteTrainingError(RuntimeError):
    """Loss or gradient norm became NaN/inf; training stopped and the last good checkpoint kept."""


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def load_table(cfg: ExperimentConfig) -> pd.DataFrame:
    from shala_lib.datasets import load

    return load(cfg.dataset, subset=cfg.subset, data_dir=cfg.data_dir, seed=cfg.seed)


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


class CompletionLog:
    """Collects sampled completions with rewards, written to parquet for inspection notebooks.

    `step` is the number of optimizer steps completed when the completion was sampled (TRL's
    `trainer_state.global_step`), so completions of step s appear in the logs of step s + 1.

    TRL runs the reward functions in every process, each on its own share of the rollouts, so each
    process writes its own part (`completions.rank<R>.parquet`) and never touches another's; the main
    process folds the parts into `completions.parquet` after training (`merge`). A resumed run drops
    what was sampled after the checkpoint, from the merged file and from every part.
    """

    def __init__(
        self, run_dir: Path, method: str, rank: int = 0, world: int = 1, resume_step: int | None = None
    ) -> None:
        self.path, self.method, self.rank, self.rows = Path(run_dir) / "completions.parquet", method, rank, []
        self.part = self.part_path(rank)
        if resume_step is None:
            self.part.unlink(missing_ok=True)
            return
        # each process trims its own part; the main one the merged file and parts of ranks gone since
        mine = [self.part] if rank else [self.path, self.part, *(p for p in self.parts() if self.rank_of(p) >= world)]
        for path in mine:
            if path.is_file():
                old = pd.read_parquet(path)
                old[old["step"] < resume_step].to_parquet(path, index=False)

    def part_path(self, rank: int) -> Path:
        return self.path.with_name(f"completions.rank{rank}.parquet")

    def parts(self) -> list[Path]:
        return sorted(self.path.parent.glob("completions.rank*.parquet"), key=self.rank_of)

    @staticmethod
    def rank_of(part: Path) -> int:
        return int(part.stem.split("rank")[-1])

    def __call__(self, kwargs: dict[str, Any], texts: list[str], rewards: list[float], statuses: list[str]) -> None:
        state = kwargs.get("trainer_state")
        step = int(state.global_step) if state is not None else -1
        ids = kwargs.get("id") or [""] * len(texts)
        levels = kwargs.get("ambiguity_level") or [""] * len(texts)
        for i, text in enumerate(texts):
            self.rows.append(
                {
                    "step": step,
                    "method": self.method,
                    "rank": self.rank,
                    "id": ids[i],
                    "ambiguity_level": levels[i],
                    "completion": text,
                    "reward": rewards[i],
                    "status": statuses[i],
                }
            )

    def flush(self) -> None:
        """Append what this process scored since the last flush to its own part."""
        if self.rows:
            new = pd.DataFrame(self.rows)
            if self.part.is_file():
                new = pd.concat([pd.read_parquet(self.part), new], ignore_index=True)
            new.to_parquet(self.part, index=False)
            self.rows = []

    def merge(self) -> int:
        """Main process, once every process has flushed: the merged file plus every part, in step
        order (within a step, by rank), into `completions.parquet`; the parts are removed. Returns
        the number of rows."""
        frames = [pd.read_parquet(p) for p in [self.path, *self.parts()] if p.is_file()]
        if not frames:
            return 0
        merged = pd.concat(frames, ignore_index=True).sort_values(["step", "rank"], kind="stable")
        tmp = self.path.with_suffix(".tmp")
        merged.reset_index(drop=True).to_parquet(tmp, index=False)
        tmp.replace(self.path)
        for part in self.parts():
            part.unlink()
        return len(merged)


def nonfinite_weights(model: Any) -> bool:
    """Whether any weight is NaN/inf, agreed by every process (so all of them stop together).

    Each process checks the weights it holds: whole tensors, or under DeepSpeed ZeRO-3 its own
    partition (`param.ds_tensor`; the parameter itself is an empty placeholder there, so checking it
    would check nothing). The flags are max-reduced across processes.
    """
    import torch

    bad = False
    with torch.no_grad():
        for p in model.parameters():
            held = getattr(p, "ds_tensor", None)
            held = p if held is None else held
            if held.numel() and not bool(torch.isfinite(held).all()):
                bad = True
                break
    return any_process(bad)


def any_process(flag: bool) -> bool:
    """`flag` OR-ed over all processes (itself when not distributed)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return flag
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def checkpoints_to_remove(steps: list[int], keep_last: int | None, val_jsd: dict[int, float]) -> list[int]:
    """Checkpoint steps to delete: all but the last `keep_last` and the one with the lowest
    validation JSD among those validated (the earliest on ties). `keep_last=None` keeps all."""
    if keep_last is None:
        return []
    ordered = sorted(steps)
    keep = set(ordered[-keep_last:])
    scored = [(val_jsd[s], s) for s in ordered if s in val_jsd and math.isfinite(val_jsd[s])]
    if scored:
        keep.add(min(scored)[1])
    return [s for s in ordered if s not in keep]


def make_callbacks(
    cfg: ExperimentConfig,
    completions: CompletionLog,
    val_set: tuple[list[str], str, np.ndarray] | None = None,
    spec: DatasetSpec | None = None,
    tokenizer: Any = None,
    resume_step: int | None = None,
    val_audio: tuple[list[str], Any] | None = None,
) -> list[Any]:
    """[guard, (validation)]: the guard always comes first. On resume from step N, metrics.csv keeps
    the rows of steps <= N and continues after them."""
    from transformers import TrainerCallback

    class Guard(TrainerCallback):
        """NaN/inf guard (loss, grad norm, weights), zero-variance warning, CSV metrics, completion flushing."""

        def __init__(self) -> None:
            self.tripped: tuple[int, str, float] | None = None
            self.zero_std: collections.deque[float] = collections.deque(maxlen=cfg.zero_std_window)
            self.warned = False
            self.rows: list[dict[str, Any]] = []
            self.csv = cfg.run_dir / "metrics.csv"
            if resume_step is not None and self.csv.is_file():
                old = pd.read_csv(self.csv)
                self.rows = [
                    {k: v for k, v in r.items() if not (isinstance(v, float) and math.isnan(v))}
                    for r in old[old["step"] <= resume_step].to_dict("records")
                ]

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            logs = logs or {}
            for key in ("loss", "grad_norm"):
                v = logs.get(key)
                if isinstance(v, int | float) and not math.isfinite(v):
                    self.tripped = (state.global_step, key, float(v))
                    control.should_training_stop = True
                    control.should_save = False
            if "frac_reward_zero_std" in logs:
                self.zero_std.append(float(logs["frac_reward_zero_std"]))
                if (
                    len(self.zero_std) == self.zero_std.maxlen
                    and np.mean(self.zero_std) > cfg.zero_std_warn
                    and not self.warned
                ):
                    msg = (
                        f"frac_reward_zero_std averaged {np.mean(self.zero_std):.2f} over the last "
                        f"{len(self.zero_std)} logs: most reward groups have zero variance and GRPO learns "
                        "nothing from them (check parse rate, temperature, unanimous items)"
                    )
                    warnings.warn(msg, stacklevel=2)
                    log.warning(msg)
                    self.warned = True
            if logs:
                self.record(state.global_step, logs)
            completions.flush()

        def record(self, step: int, values: dict[str, Any]) -> None:
            if not is_main_process():
                return
            self.rows.append({"step": step, **{k: v for k, v in values.items() if isinstance(v, int | float | str)}})
            keys = list(dict.fromkeys(k for r in self.rows for k in r))
            with open(self.csv, "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=keys)
                w.writeheader()
                w.writerows(self.rows)

        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
            """Weights made non-finite by the last update would crash the next rollout's sampling
            ('probability tensor contains inf/nan'): stop before saving or sampling with them."""
            if model is None or self.tripped is not None:
                return
            if nonfinite_weights(model):
                self.tripped = (state.global_step, "parameters", float("nan"))
                control.should_training_stop = True
                control.should_save = False

        def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            """Keep the last `keep_checkpoints` checkpoints and the best by validation JSD."""
            if not is_main_process():
                return
            steps = [checkpoint_step(p) for p in cfg.run_dir.glob("checkpoint-*")]
            val = {int(r["step"]): float(r["val_jsd"]) for r in self.rows if "val_jsd" in r}
            for step in checkpoints_to_remove(steps, cfg.keep_checkpoints, val):
                shutil.rmtree(cfg.run_dir / f"checkpoint-{step}", ignore_errors=True)

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            completions.flush()

    guard = Guard()

    class Validation(TrainerCallback):
        """Every `val_every` steps: greedy predictions on validation items -> val_jsd, val_parse_rate."""

        def __init__(self) -> None:
            self.off = False  # set under ZeRO-3, where the weights are sharded

        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
            # the main process only: the others go on to the next step and wait for it there
            if self.off or state.global_step % cfg.val_every or model is None or not is_main_process():
                return
            from transformers.integrations import is_deepspeed_zero3_enabled

            if is_deepspeed_zero3_enabled():
                log.warning("validation JSD is skipped under ZeRO-3 (sharded weights); use eval after training")
                self.off = True
                return
            guard.record(
                state.global_step,
                validation_metrics(
                    model,
                    tokenizer,
                    spec,
                    *val_set,
                    constrained=cfg.constrained_eval,
                    grammar=cfg.grammar,
                    clips=val_audio[0] if val_audio else None,
                    processor=val_audio[1] if val_audio else None,
                ),
            )

    return [guard, Validation()] if cfg.val_every and val_set is not None else [guard]


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
    from shala_lib.constrained import JsonDistributionProcessor

    return JsonDistributionProcessor(tokenizer, spec, prefill=prefill_text(spec) if prefill else "", grammar=grammar)


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

    from shala_lib.collapse import collapse_stats
    from shala_lib.constrained import JsonDistributionProcessor
    from shala_lib.inference import generate_hf
    from shala_lib.metrics import evaluate
    from shala_lib.omni import is_omni, placeholder_token_ids
    from shala_lib.parsing import parse_many

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


def leave_distributed_training(trainer: Any) -> None:
    """Free the trainer's engine and switch off transformers' global ZeRO-3 flag, so that loading the
    final model for evaluation is a plain `from_pretrained`: with the flag on, it runs under
    `deepspeed.zero.Init`, which waits for the other processes (a hang when one process evaluates)."""
    import gc

    import torch
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    trainer.accelerator.free_memory()
    unset_hf_deepspeed_config()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


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
    from shala_lib.omni import OMNI_SYSTEM_PROMPT, load_processor, model_family

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


def train(cfg: ExperimentConfig, resume: bool = False) -> dict[str, Any]:
    """Run GRPO for one experiment; returns paths and the post-training test metrics.

    Runs as one process or as several (`torchrun` / `accelerate launch`): the main process cleans
    the run folder before any process writes into it, every process logs the completions it scored
    to its own part, and after training the main process merges them and, with every distributed
    engine released, evaluates the final model on the test split.
    """
    import torch
    from accelerate import PartialState

    from shala_lib.rollouts import StructuredGRPOTrainer

    spec = get_spec(cfg.dataset)
    on_cpu = cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available())
    args = grpo_config(cfg, on_cpu)  # starts the process group when launched with several processes
    state = PartialState()
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = last_checkpoint(cfg.run_dir) if resume else None
    if resume and ckpt is None:
        log.warning("--resume: no checkpoint in %s, starting from scratch", cfg.run_dir)
    if ckpt is None and state.is_main_process:
        clear_previous_run(cfg.run_dir)
    state.wait_for_everyone()  # the folder is clean before any process writes into it
    resume_step = checkpoint_step(ckpt) if ckpt else None
    if state.is_main_process:
        cfg.to_yaml(cfg.run_dir / "experiment.yaml")
    model_path = resolve_model(cfg.model)
    tok = load_tokenizer(model_path)
    setup = model_setup(cfg, spec, model_path, tok)
    table = load_table(cfg)
    train_ds = build_dataset(
        table, spec, "train", cfg, setup.renderer, cfg.max_train_items, setup.modality, setup.system
    )
    completions = CompletionLog(cfg.run_dir, cfg.method, state.process_index, state.num_processes, resume_step)
    reward = make_reward_func(
        cfg.method,
        spec,
        prefill=prefill_text(spec) if cfg.prefill else "",
        on_scored=completions,
        sum_tolerance=cfg.sum_tolerance,
    )
    peft_config = None
    if cfg.lora:
        from peft import LoraConfig

        targets = cfg.lora_target_modules
        if setup.omni and targets == "all-linear":
            targets = OMNI_LORA_TARGETS  # the language model only: no adapters on the audio or vision towers
        peft_config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, target_modules=targets, task_type="CAUSAL_LM")
    val_set, val_audio = None, None
    if cfg.val_every:
        val = build_dataset(table, spec, "validation", cfg, setup.renderer, cfg.val_items, setup.modality, setup.system)
        val_set = (list(val["prompt"]), prefill_text(spec) if cfg.prefill else "", np.asarray(val["target"]))
        if setup.speech:
            val_audio = (list(val["audio_path"]), setup.processor)
    callbacks = make_callbacks(cfg, completions, val_set, spec, tok, resume_step, val_audio)
    model: Any = model_path  # TRL loads it (model_init_kwargs; under ZeRO-3 partitioned as it loads)
    if setup.omni:
        from shala_lib.omni import load_thinker, placeholder_token_ids

        # the thinker is loaded here (TRL would pick AutoModelForCausalLM); after grpo_config(), so under
        # ZeRO-3 it is partitioned as it loads, like TRL's own loading
        model = load_thinker(model_path, **args.model_init_kwargs)
        # a sampled <|AUDIO|> / image / video placeholder would break the next forward's feature merge
        args.generation_kwargs = {**(args.generation_kwargs or {}), "suppress_tokens": placeholder_token_ids(model)}
    if cfg.train_top_layers:
        from transformers import AutoModelForCausalLM

        if not setup.omni:
            model = AutoModelForCausalLM.from_pretrained(model_path, **args.model_init_kwargs)
        trainable, total = freeze_below_top_layers(model, int(cfg.train_top_layers))
        log.info("train_top_layers=%s: %d of %d parameters trainable", cfg.train_top_layers, trainable, total)
    rollout_processor = json_processor(tok, spec, cfg.prefill, cfg.grammar) if cfg.structured_rollouts else None
    common = dict(
        model=model,
        reward_funcs=[reward],
        args=args,
        train_dataset=train_ds,
        processing_class=tok,
        callbacks=callbacks,
        peft_config=peft_config,
        rollout_processor=rollout_processor,
    )
    if setup.speech:
        from shala_lib.speech_trainer import SpeechGRPOTrainer

        trainer: Any = SpeechGRPOTrainer(**common, audio_processor=setup.processor)
    else:
        trainer = StructuredGRPOTrainer(**common)
    if state.is_main_process:
        write_effective_config(cfg, trainer.args, setup)
    trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    state.wait_for_everyone()  # every process has flushed its completions (on_train_end)
    if state.is_main_process:
        completions.merge()
    guard = callbacks[0]
    if guard.tripped is not None:
        step, key, value = guard.tripped
        good = last_checkpoint(cfg.run_dir)
        raise NonFiniteTrainingError(
            f"{key} = {value} at step {step}; training stopped. Last good checkpoint: {good or 'none'}. "
            "Lower the learning rate, keep fp32 master weights (bf16 autocast), or check the rewards."
        )
    final = cfg.run_dir / "final"
    trainer.save_model(str(final))  # every process: under ZeRO-3 the weights are gathered from all
    if state.is_main_process:
        tok.save_pretrained(final)
        if setup.processor is not None:
            from shala_lib.omni import save_processor

            save_processor(setup.processor, final)
    if setup.speech:
        trainer.clip_report.log(f"{cfg.name} (training clips)")
    result: dict[str, Any] = {
        "run_dir": str(cfg.run_dir),
        "final": str(final),
        "global_step": trainer.state.global_step,
        "world_size": state.num_processes,
        "modality": setup.modality,
        "train_runtime_s": round(float(trainer.state.log_history[-1].get("train_runtime", 0)), 1),
    }
    if torch.cuda.is_available():
        result["peak_gpu_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    leave_distributed_training(trainer)
    del trainer
    state.wait_for_everyone()  # final/ is complete before it is read
    if state.is_main_process and cfg.eval_split:
        for stale in (
            cfg.run_dir / f"predictions_{cfg.eval_split}.jsonl",
            cfg.run_dir / f"metrics_{cfg.eval_split}.json",
        ):
            stale.unlink(missing_ok=True)  # a new final model: earlier predictions are not its own
        result["metrics"] = evaluate_checkpoint(cfg, final, table)
    return result


def evaluate_checkpoint(cfg: ExperimentConfig, model_dir: Path, table: pd.DataFrame | None = None) -> dict[str, Any]:
    """Greedy test-split predictions of a checkpoint (as the paper), stored like zero-shot ones."""
    from shala_lib.collapse import collapse_stats, warn_if_collapsed
    from shala_lib.datasets import first_items
    from shala_lib.inference import attach_gold, predict
    from shala_lib.metrics import evaluate
    from shala_lib.models import load_model

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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="shala-train", description=__doc__.split("\n\n")[0])
    ap.add_argument("config", help="experiment YAML (see configs/)")
    ap.add_argument("--resume", action="store_true", help="continue from the last checkpoint in the run dir")
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="override config keys, e.g. method=mls grpo.max_steps=10",
    )
    ap.add_argument("--eval-only", action="store_true", help="only evaluate <run_dir>/final")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = ExperimentConfig.from_yaml(args.config).with_overrides(args.set)
    if args.eval_only:
        print(json.dumps(evaluate_checkpoint(cfg, cfg.run_dir / "final"), indent=2))
        return 0
    try:
        result = train(cfg, resume=args.resume)
    except NonFiniteTrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
