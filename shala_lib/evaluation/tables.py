"""The paper's Table 1 (methods vs zero-shot) and Table 2 (beside published numbers).

Table 1 rows: every method with predictions plus the data-only reference rows; columns JSD, BC,
Acc, F1, W-F1 with the change against zero-shot in brackets, and the unparsable count. In the
Markdown/LaTeX export the best model row per metric is bold and the second underlined (data-only
rows are shown but not ranked: the oracle knows the test labels).

The paper's own Table 1 (every method, dataset and ChaosNLI block, `resources/paper_table1.csv`,
with the relative changes it prints) is `paper_table1`; `table1_vs_paper` puts our rows beside it,
metric by metric, with the differences.

Both tables come in blocks, as in the paper: the whole dataset, then each subset (ChaosNLI,
ChaosNLI-M, ChaosNLI-S: the same predictions scored per subset, `table_blocks`). Ranks and
relative changes are computed within each block.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from shala_lib.data.specs import DatasetSpec
from shala_lib.evaluation.significance import bootstrap_ci
from shala_lib.scoring.collapse import best_constant, collapse_stats
from shala_lib.scoring.methods import data_only_methods, method_label
from shala_lib.scoring.metrics import (
    evaluate,
    format_with_change,
    higher_is_better,
    metric_label,
    relative_change,
    table_metrics,
)

JSD_E_TO_2 = 1.0 / math.sqrt(math.log(2.0))  # base-2 JS distance = 1.2011 x base-e


COLLAPSE_COLUMNS: tuple[str, ...] = (
    "n_distinct",
    "max_class_std",
    "jsd_best_constant",
    "jsd_vs_best_constant",
    "input_independent",
)


def metrics_rows(preds: Mapping[str, np.ndarray], gold: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    """One row of metrics per method (NaN rows in a prediction array = unparsable), with the collapse
    statistics beside them (`shala_lib.scoring.collapse`: distinct answers, JSD against the best constant)."""
    rows = []
    constant = best_constant(gold)  # the same items for every method: optimised once
    for m, p in preds.items():
        col = collapse_stats(p, gold, constant=constant)
        rows.append({"method": m, **evaluate(p, gold, classes), **{k: col[k] for k in COLLAPSE_COLUMNS}})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Block:
    """One block of Tables 1-2: a name as the paper prints it, the dataset key of the published
    numbers (`published_results.csv`), and which of the compared items it scores."""

    name: str
    key: str
    mask: np.ndarray


def table_blocks(spec: DatasetSpec, items: pd.DataFrame) -> list[Block]:
    """The whole dataset, then each subset present among `items`, in the paper's order (by display
    name: ChaosNLI-M before ChaosNLI-S). A dataset without subsets has one block."""
    blocks = [Block(spec.display_name, spec.name, np.ones(len(items), dtype=bool))]
    if spec.subsets and "subset" in items.columns:
        subsets = items["subset"].astype(str).to_numpy()
        for sub in sorted(spec.subsets, key=lambda s: spec.subset_display.get(s, s)):
            if (subsets == sub).any():
                blocks.append(Block(spec.subset_display.get(sub, sub), f"{spec.name}_{sub}", subsets == sub))
    return blocks


def block_scores(
    preds: Mapping[str, np.ndarray], gold: np.ndarray, classes: Sequence[str], blocks: Sequence[Block]
) -> pd.DataFrame:
    """`metrics_rows` for each block, stacked, with the block's name in a first column `block`."""
    return stack_blocks(
        metrics_rows({m: p[b.mask] for m, p in preds.items()}, gold[b.mask], classes).assign(block=b.name)
        for b in blocks
    )


def stack_blocks(parts: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Per-block frames (each with a `block` column) stacked, `block` first."""
    out = pd.concat(list(parts), ignore_index=True)
    return out[["block", *[c for c in out.columns if c != "block"]]]


def rank_marks(
    table: pd.DataFrame, metrics: Sequence[str] | None = None, exclude: Sequence[str] | None = None
) -> pd.DataFrame:
    """'best' / 'second' / '' per cell, by each metric's direction, among the ranked rows (all but the
    data-only reference rows unless `exclude` says otherwise)."""
    metrics = table_metrics() if metrics is None else metrics
    exclude = data_only_methods() if exclude is None else exclude
    marks = pd.DataFrame("", index=table.index, columns=list(metrics))
    ranked = table[~table["method"].isin(exclude)]
    for m in metrics:
        vals = ranked[m].dropna()
        if vals.empty:
            continue
        order = vals.sort_values(ascending=not higher_is_better(m))
        unique = order.unique()
        marks.loc[order.index[order == unique[0]], m] = "best"
        if len(unique) > 1:
            marks.loc[order.index[order == unique[1]], m] = "second"
    return marks


def table1(
    table: pd.DataFrame,
    reference: str = "zero_shot",
    style: str = "markdown",
    metrics: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Formatted Table 1: value (change vs reference), best bold, second underlined
    (style "markdown" or "latex"; "plain" leaves the marks out). With the collapse statistics
    (`metrics_rows`), "Distinct answers" and "JSD vs best constant" (< 0: better than any constant
    answer) follow the unparsable count. A `block` column (`block_scores`)
    gives one block per value, each ranked and compared with its own reference row, the block's name
    in a first column `Dataset` on its first row."""
    if "block" in table.columns:
        parts = []
        for block, part in table.groupby("block", sort=False):
            t = table1(part.drop(columns="block").reset_index(drop=True), reference, style, metrics, labels)
            t.insert(0, "Dataset", [block] + [""] * (len(t) - 1))
            parts.append(t)
        return pd.concat(parts, ignore_index=True)
    if reference not in set(table["method"]):
        raise ValueError(f"reference method {reference!r} not in the table ({sorted(table['method'])})")
    ref = table.set_index("method").loc[reference]
    metrics = table_metrics() if metrics is None else metrics
    marks = rank_marks(table, metrics)
    wrap = {
        "markdown": {"best": "**{}**", "second": "<u>{}</u>", "": "{}"},
        "latex": {"best": "\\textbf{{{}}}", "second": "\\underline{{{}}}", "": "{}"},
        "plain": {"best": "{}", "second": "{}", "": "{}"},
    }[style]
    out = pd.DataFrame({"Method": [(labels or {}).get(m, method_label(m)) for m in table["method"]]})
    for m in metrics:
        cells = []
        for i, row in table.iterrows():
            base = None if row["method"] == reference else float(ref[m])
            cells.append(wrap[marks.loc[i, m]].format(format_with_change(float(row[m]), base, m)))
        out[metric_label(m)] = cells
    out["Unparsable"] = table["n_unparsable"].astype(int).to_numpy()
    if "n_distinct" in table.columns:  # collapse statistics, beside each row
        out["Distinct answers"] = table["n_distinct"].astype(int).to_numpy()
        out["JSD vs best constant"] = [f"{v:+.3f}" for v in table["jsd_vs_best_constant"]]
    return out


def confidence_table(
    preds: Mapping[str, np.ndarray],
    gold: np.ndarray,
    classes: Sequence[str],
    n_boot: int = 1000,
    seed: int = 0,
    blocks: Sequence[Block] | None = None,
) -> pd.DataFrame:
    """Bootstrap 95% CIs per method and metric (companion to Table 1), per block when given."""
    cols = ["method", "metric", "value", "ci_low", "ci_high", "n_boot"]
    if blocks is not None:
        return stack_blocks(
            confidence_table({m: p[b.mask] for m, p in preds.items()}, gold[b.mask], classes, n_boot, seed).assign(
                block=b.name
            )
            for b in blocks
        )
    parts = [bootstrap_ci(p, gold, classes, n_boot=n_boot, seed=seed).assign(method=m) for m, p in preds.items()]
    return pd.concat(parts, ignore_index=True)[cols]


def published_results(dataset: str | None = None) -> pd.DataFrame:
    """Published numbers the paper compares with, each with its source and JSD log base
    (`resources/published_results.csv`), plus the `published:` rows of dataset definitions."""
    with resources.files("shala_lib.resources").joinpath("published_results.csv").open() as fh:
        table = pd.read_csv(fh)
    from shala_lib.data.definition import get_definition

    extra = []
    if dataset is not None and dataset not in set(table["dataset"]):
        try:
            extra = [{"dataset": dataset, "jsd_log_base": "2", **r} for r in get_definition(dataset).published]
        except KeyError:
            extra = []
    if extra:
        table = pd.concat([table, pd.DataFrame(extra).reindex(columns=table.columns)], ignore_index=True)
    return table if dataset is None else table[table["dataset"] == dataset].reset_index(drop=True)


def table2(ours: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Published rows for `dataset` beside ours, ours in both JSD bases; each row names its source.

    Published JSDs stay in the base their source used (column `jsd_log_base`); a base-2
    equivalent is added for base-e rows so every row can be read on one scale.
    """
    pub = published_results(dataset).copy()
    if "block" in ours.columns:
        ours = ours.drop(columns="block")
    pub["jsd_base2"] = np.where(pub["jsd_log_base"].astype(str) == "e", pub["jsd"] * JSD_E_TO_2, pub["jsd"])
    pub["origin"] = "published"
    mine = ours.assign(
        dataset=dataset,
        source="this workbench",
        jsd_log_base="2",
        origin="ours",
        jsd_base2=ours["jsd"],
        note=[f"also base e: {v:.3f}" for v in ours["jsd_e"]],
    )
    cols = [
        "origin",
        "dataset",
        "method",
        "source",
        "jsd",
        "jsd_log_base",
        "jsd_base2",
        "bc",
        "acc",
        "f1",
        "wf1",
        "note",
    ]
    return pd.concat([pub[cols], mine[cols]], ignore_index=True)


def table2_blocks(ours: pd.DataFrame, blocks: Sequence[Block]) -> pd.DataFrame:
    """`table2` for each block (`ours` has a `block` column, as from `block_scores`), stacked: the
    published rows of each block's key (e.g. chaosnli_mnli for ChaosNLI-M) beside ours."""
    return stack_blocks(table2(ours[ours["block"] == b.name], b.key).assign(block=b.name) for b in blocks)


def write_table1(
    scores: pd.DataFrame,
    directory: str | Path,
    name: str,
    labels: Mapping[str, str] | None = None,
    metrics: Sequence[str] | None = None,
) -> list[Path]:
    """Table 1 as Markdown (bold/underline), LaTeX (\\textbf/\\underline) and raw values (CSV);
    `metrics`: its columns (default: the paper's, `table_metrics()`)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{name}.md", directory / f"{name}.tex", directory / f"{name}_values.csv"]
    paths[0].write_text(table1(scores, labels=labels, metrics=metrics).to_markdown(index=False) + "\n")
    paths[1].write_text(
        table1(scores, style="latex", labels=labels, metrics=metrics).to_latex(index=False, escape=False)
    )
    scores.to_csv(paths[2], index=False)
    return paths


PAPER_TABLE1_METRICS: tuple[str, ...] = ("jsd", "bc", "acc", "f1", "wf1")


def paper_table1(dataset: str | None = None) -> pd.DataFrame:
    """The paper's Table 1 whole (`resources/paper_table1.csv`): one row per block (`dataset`: chaosnli,
    chaosnli_mnli, chaosnli_snli, msp_podcast, goemotions) and method (registry names: zero_shot, mls,
    shala_no_ambi, shala), the five metrics (JSD base 2), the relative change against zero-shot the
    paper prints beside each (`<metric>_pct`, + = better; NaN on the zero-shot row), source and note."""
    with resources.files("shala_lib.resources").joinpath("paper_table1.csv").open() as fh:
        table = pd.read_csv(fh)
    return table if dataset is None else table[table["dataset"] == dataset].reset_index(drop=True)


def table1_vs_paper(scores: pd.DataFrame, blocks: Sequence[Block], reference: str = "zero_shot") -> pd.DataFrame:
    """Our Table 1 beside the paper's, method by method and metric by metric (long: one row per block,
    method and metric): our value, the paper's, ours minus the paper's, and each one's relative change
    against its own zero-shot row (+ = better; the paper's as printed). `scores` has a `block` column
    (`block_scores`); a block is matched to the paper by its key (e.g. chaosnli_mnli for ChaosNLI-M).
    Every method of the paper's block is listed (NaN where we have no such row); blocks the paper
    does not report are left out (an empty frame for a dataset the paper does not cover)."""
    cols = ["block", "method", "metric", "ours", "paper", "ours_minus_paper", "ours_vs_zs_%", "paper_vs_zs_%"]
    rows = []
    for b in blocks:
        paper = paper_table1(b.key).set_index("method")
        if paper.empty:
            continue
        ours = (
            scores[scores["block"] == b.name].set_index("method") if "block" in scores else scores.set_index("method")
        )
        for method, pub in paper.iterrows():
            for m in PAPER_TABLE1_METRICS:
                mine = float(ours.loc[method, m]) if method in ours.index else float("nan")
                ref = float(ours.loc[reference, m]) if reference in ours.index else float("nan")
                change = relative_change(mine, ref, m) if method != reference else float("nan")
                rows.append(
                    {
                        "block": b.name,
                        "method": method_label(method),
                        "metric": metric_label(m),
                        "ours": mine,
                        "paper": float(pub[m]),
                        "ours_minus_paper": mine - float(pub[m]),
                        "ours_vs_zs_%": change,
                        "paper_vs_zs_%": float(pub[f"{m}_pct"]),
                    }
                )
    return pd.DataFrame(rows, columns=cols)
