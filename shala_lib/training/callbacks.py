"""Trainer callbacks: the NaN/inf guard, CSV metrics, checkpoint pruning, validation; the completion log."""

from __future__ import annotations

import collections
import csv
import logging
import math
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shala_lib.data.specs import DatasetSpec
from shala_lib.training.config import ExperimentConfig
from shala_lib.training.distributed import any_process, is_main_process
from shala_lib.training.run_dir import checkpoint_step
from shala_lib.training.validation import validation_metrics

log = logging.getLogger(__name__)


class NonFiniteTrainingError(RuntimeError):
    """Loss or gradient norm became NaN/inf; training stopped and the last good checkpoint kept."""


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
