"""The learning check (issue 23): does our GRPO machinery learn the raters' distribution when the task is
learnable on purpose?

The triage probe (`shala_lib.data.probe`: four cue groups of support messages with known rater
distributions) is made a contextual bandit: a tiny from-scratch Llama with a word-level tokenizer in
which every prompt word, every JSON key segment and every answer level 0.0 ... 1.0 is ONE token
(`shala_lib.generation.tiny.build_bandit_model`). With prefill and the simplex grammar a rollout is
`[level, key, level, key, level, "}"]`: the policy chooses two tenths per message, each one token, so
greedy decoding of a learned answer is the answer.

Training is ours end to end (`shala_lib.training.run.train` with the ExperimentConfig of
`configs/learning_check.yaml`, our rewards, parser, answer grammar and TRL's `GRPOTrainer` as we
configure it); the held-out predictions are the run's own `predictions_test.jsonl`. The check passes
when, on every seed, SHALA beats the best constant answer by `MARGIN` JSD with answers that differ by cue
group, and MLS ends near one-hot on each group's majority with a worse JSD than SHALA.

`benchmarks/learning_check.py` is the command line; notebook 07 (`--profile learning_check`) the profile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shala_lib.data.probe import cue_group_answers
from shala_lib.data.prompts import prompt_text
from shala_lib.data.specs import get_spec
from shala_lib.generation.predictions import attach_gold, read_predictions
from shala_lib.generation.tiny import build_bandit_model
from shala_lib.scoring.collapse import collapse_stats
from shala_lib.scoring.methods import method_label
from shala_lib.scoring.metrics import evaluate
from shala_lib.training.config import ExperimentConfig

CONFIG = "configs/learning_check.yaml"
METHODS: tuple[str, ...] = ("shala", "shala_no_ambi", "mls")
SEEDS: tuple[int, ...] = (0, 1)
MARGIN = 0.05  # JSD SHALA must gain over the best constant answer
MIN_GROUPS = 3  # distinct cue-group answers (of 4) at one decimal
MLS_ONE_HOT = 0.7  # MLS's mean mass on each group's majority class
# the from-scratch model (`build_bandit_model`'s arguments): one layer of width 64
ARCH: dict[str, Any] = {"layers": 1, "hidden_size": 64}


def bandit_model(cfg: ExperimentConfig, table: pd.DataFrame, out_dir: Path, seed: int, **arch: Any) -> Path:
    """The tiny from-scratch model of seed `seed` (in `out_dir/model_seed<seed>`, reused only when built by the
    same recipe), its
    vocabulary the words of every item's prompt; `arch` (`build_bandit_model`'s hidden_size, layers,
    heads, initializer_range) over `ARCH`."""
    spec = get_spec(cfg.dataset)
    texts = [prompt_text(spec, row, cfg.prompt_variant) for _, row in table.iterrows()]
    return build_bandit_model(Path(out_dir) / f"model_seed{seed}", texts, spec.keys, seed=seed, **{**ARCH, **arch})


def score_run(run_dir: Path, table: pd.DataFrame, cfg: ExperimentConfig) -> dict[str, Any]:
    """Held-out scores of a finished run (its `predictions_<eval_split>.jsonl`) beside the constant answers."""
    spec = get_spec(cfg.dataset)
    test = table[table["split"] == cfg.eval_split]
    gold = np.asarray(test["dist"].tolist(), dtype=float)
    pred = attach_gold(read_predictions(Path(run_dir) / f"predictions_{cfg.eval_split}.jsonl"), test, spec.n_classes)[0]
    m = evaluate(pred, gold, spec.classes)
    c = collapse_stats(pred, gold)
    uniform = evaluate(np.full_like(gold, 1.0 / spec.n_classes), gold, spec.classes)["jsd"]
    by_group = cue_group_answers(pred, test["cue_group"].to_numpy(), gold)
    return {
        "jsd": float(m["jsd"]),
        "best_constant_jsd": float(c["jsd_best_constant"]),
        "uniform_jsd": float(uniform),
        "gain_over_best_constant": float(c["jsd_best_constant"] - m["jsd"]),
        "n_distinct": int(c["n_distinct"]),
        "n_unparsable": int(m["n_unparsable"]),
        "distinct_group_answers": len({tuple(np.round(r["answer"], 1)) for r in by_group}),
        "by_group": by_group,
    }


def shala_passes(row: dict[str, Any], margin: float = MARGIN, min_groups: int = MIN_GROUPS) -> bool:
    """SHALA's criterion: the best constant beaten by `margin` with answers that differ by cue group."""
    return row["gain_over_best_constant"] >= margin and row["distinct_group_answers"] >= min_groups


def mls_passes(row: dict[str, Any], shala_jsd: float | None, one_hot: float = MLS_ONE_HOT) -> bool:
    """MLS's criterion: near one-hot on each group's majority class (by the raters' group mean; the
    unclear group's urgent/routine tie counts either), with a worse JSD than SHALA's."""
    for g in row["by_group"]:
        raters, answer = np.asarray(g["raters"]), np.asarray(g["answer"])
        top = np.flatnonzero(raters >= raters.max() - 0.05)  # a near tie: either majority will do
        if answer[top].max() < one_hot:
            return False
    return shala_jsd is None or row["jsd"] > shala_jsd


def run_method(
    cfg: ExperimentConfig,
    method: str,
    seed: int,
    model: Path,
    table: pd.DataFrame,
    out: Path,
    sets: Iterable[str] = (),
) -> dict[str, Any]:
    """Train one method on one seed with our machinery (`shala_lib.training.run.train`, on one thread:
    the same numbers on any machine) and score it on the held-out items."""
    import torch

    from shala_lib.training.run import train

    run_cfg = cfg.with_overrides(
        [
            f"method={method}",
            f"name=learning_check_{method}_seed{seed}",
            f"model={model}",
            f"output_dir={out}",
            f"grpo.seed={seed}",
            *sets,
        ]
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # thread counts change float sums, and sampled rollouts follow them
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        result = train(run_cfg, overwrite=True)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        torch.set_num_threads(threads)
    return {
        "method": method,
        "seed": seed,
        "steps": int(result["global_step"]),
        **score_run(Path(result["run_dir"]), table, run_cfg),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
    }


def verdicts(rows: list[dict[str, Any]], margin: float = MARGIN, min_groups: int = MIN_GROUPS) -> dict[str, bool]:
    """Per seed: SHALA's and MLS's criteria (`shala_passes`, `mls_passes`) for the methods that ran
    (empty when neither ran: see `passed`)."""
    out: dict[str, bool] = {}
    for seed in dict.fromkeys(r["seed"] for r in rows):
        by = {r["method"]: r for r in rows if r["seed"] == seed}
        if "shala" in by:
            out[f"shala seed {seed}"] = shala_passes(by["shala"], margin, min_groups)
        if "mls" in by:
            out[f"mls seed {seed}"] = mls_passes(by["mls"], by["shala"]["jsd"] if "shala" in by else None)
    return out


def passed(verdict: dict[str, bool]) -> bool:
    """The check's outcome: every criterion met, and at least one judged (a run of neither SHALA nor MLS
    judges nothing, and does not pass)."""
    return bool(verdict) and all(verdict.values())


def progress_line(row: dict[str, Any]) -> str:
    """One finished run in a line: held-out JSD beside the best constant's, distinct group answers, time."""
    return (
        f"[{row['method']} seed {row['seed']}] JSD {row['jsd']:.3f} (best constant {row['best_constant_jsd']:.3f}, "
        f"gain {row['gain_over_best_constant']:+.3f}), {row['distinct_group_answers']} distinct group answers, "
        f"wall {row['wall_s']:.0f} s, CPU {row['cpu_s']:.0f} s"
    )


def check_config(config: str | Path = CONFIG, sets: Iterable[str] = ()) -> ExperimentConfig:
    """The check's experiment config with `sets` applied (on CPU), as every run of it starts from."""
    return ExperimentConfig.from_yaml(config).with_overrides(["device=cpu", *sets])


def run_check(
    config: str | Path = CONFIG,
    seeds: Iterable[int] = SEEDS,
    methods: Iterable[str] = METHODS,
    out: str | Path = "runs/learning_check",
    sets: Iterable[str] = (),
    arch: dict[str, Any] | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Every method on every seed (each seed its own from-scratch model); one row per run. `progress(row)`
    is called after each run."""
    from shala_lib.data.loading import load

    cfg = check_config(config, sets)
    table = load(cfg.dataset, seed=cfg.seed)  # the data seed stays fixed: the same held-out items
    rows = []
    for seed in seeds:
        model = bandit_model(cfg, table, Path(out), seed, **(arch or {}))
        for method in methods:
            row = run_method(cfg, method, seed, model, table, Path(out))
            rows.append(row)
            if progress is not None:
                progress(row)
    return rows


def results_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per method and seed: held-out JSD beside the best constant and uniform answers, the gain,
    distinct answers (items and cue groups). Deterministic (one thread per run): the times are in the rows
    (`wall_s`, `cpu_s`), not in this table, so a rerun rewrites the same file."""
    return pd.DataFrame(
        [
            {
                "method": method_label(r["method"]),
                "seed": r["seed"],
                "steps": r["steps"],
                "JSD": r["jsd"],
                "best constant JSD": r["best_constant_jsd"],
                "uniform JSD": r["uniform_jsd"],
                "gain over best constant": r["gain_over_best_constant"],
                "distinct answers": r["n_distinct"],
                "distinct group answers": r["distinct_group_answers"],
            }
            for r in rows
        ]
    )


def group_table(rows: list[dict[str, Any]], classes: tuple[str, ...]) -> pd.DataFrame:
    """Per method, seed and cue group: the mean held-out answer beside the raters' mean, class by class."""
    records = []
    for r in rows:
        for g in r["by_group"]:
            records.append(
                {
                    "method": method_label(r["method"]),
                    "seed": r["seed"],
                    "cue group": g["cue_group"],
                    **{f"raters {c}": q for c, q in zip(classes, g["raters"])},
                    **{f"model {c}": a for c, a in zip(classes, g["answer"])},
                }
            )
    return pd.DataFrame(records)
