"""Ambiguity-level and per-class analysis (the paper's Figures 2-7) and the degradation tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from shala_lib.evaluation.significance import degradation_test
from shala_lib.scoring.methods import method_label, method_palette
from shala_lib.scoring.metrics import (
    evaluate_by,
    evaluate_by_class,
    figure_metrics,
    get_metric,
    metric_label,
    per_item,
)


def per_item_scores(preds: Mapping[str, np.ndarray], gold: np.ndarray, items: pd.DataFrame) -> pd.DataFrame:
    """Long table: one row per (method, item) with jsd, bc, correct, ambiguity level and majority."""
    parts = []
    for method, p in preds.items():
        s = per_item(p, gold).reset_index(drop=True)
        s["method"] = method
        s["id"] = items["id"].to_numpy()
        s["ambiguity_level"] = items["ambiguity_level"].to_numpy()
        s["majority"] = items["majority"].to_numpy()
        parts.append(s)
    return pd.concat(parts, ignore_index=True)


def grouped_metrics(
    preds: Mapping[str, np.ndarray],
    gold: np.ndarray,
    classes: Sequence[str],
    groups: Sequence[object],
    order: Sequence[object],
) -> pd.DataFrame:
    """evaluate_by for every method, stacked (columns: method, group, metrics...)."""
    return pd.concat(
        [evaluate_by(p, gold, classes, groups, order).assign(method=m) for m, p in preds.items()], ignore_index=True
    )


def grouped_class_metrics(
    preds: Mapping[str, np.ndarray], gold: np.ndarray, classes: Sequence[str], majority: Sequence[str]
) -> pd.DataFrame:
    """evaluate_by_class for every method, stacked: per gold majority class, with `class_f1`."""
    return pd.concat(
        [evaluate_by_class(p, gold, classes, majority).assign(method=m) for m, p in preds.items()], ignore_index=True
    )


def plot_by_level(scores: pd.DataFrame, grouped: pd.DataFrame, order: Sequence[str], title: str = "") -> plt.Figure:
    """Figure 2: one panel per registered figure metric (`Metric.in_figure`; JSD, BC, Acc, macro F1),
    per ambiguity level: boxplots of a per-item metric's item values (`scores`, from `per_item_scores`),
    lines of a set metric's value per level (`grouped`, from `grouped_metrics`)."""
    methods = list(dict.fromkeys(scores["method"]))
    pal = method_palette(methods)
    panels = figure_metrics()
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6), squeeze=False)
    axes = axes[0]
    g = grouped[grouped["group"] != "all"]
    for ax, m in zip(axes, panels):
        if m.per_item is None:
            sns.lineplot(
                data=g,
                x="group",
                y=m.name,
                hue="method",
                hue_order=methods,
                palette=pal,
                marker="o",
                ax=ax,
                legend=False,
                sort=False,
            )
            ax.set(title=m.panel_title, xlabel="ambiguity level", ylabel="")
            continue
        sns.boxplot(
            data=scores,
            x="ambiguity_level",
            y=m.name,
            hue="method",
            order=list(order),
            hue_order=methods,
            palette=pal,
            ax=ax,
            fliersize=1,
            legend=ax is axes[0],
        )
        direction = "higher" if m.higher_is_better else "lower"
        ax.set(title=f"{m.panel_title} ({direction} is better)", xlabel="ambiguity level", ylabel="")
    _figure_legend(fig, axes[0], len(methods))
    fig.suptitle(title)
    return fig


def _figure_legend(fig: plt.Figure, ax: plt.Axes, n: int) -> None:
    """One legend for the whole figure, below the panels, instead of inside the first one."""
    handles, labels = ax.get_legend_handles_labels()
    if ax.get_legend():
        ax.get_legend().remove()
    fig.tight_layout(rect=(0, 0.1, 1, 0.94))
    if handles:
        fig.legend(handles, [method_label(x) for x in labels], loc="lower center", ncol=n, frameon=False)


def plot_by_class(grouped: pd.DataFrame, classes: Sequence[str], title: str = "") -> plt.Figure:
    """2x2 panels (JSD, BC, Acc, F1 of the class) per gold majority class, one bar per method
    (`grouped_class_metrics`; the F1 panel is each class's own F1, as the paper's)."""
    methods = list(dict.fromkeys(grouped["method"]))
    g = grouped[grouped["group"] != "all"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    panels = (("jsd", "JSD"), ("bc", "BC"), ("acc", "Accuracy"), ("class_f1", metric_label("class_f1")))
    for ax, (metric, label) in zip(axes.flat, panels):
        sns.barplot(
            data=g,
            x="group",
            y=metric,
            hue="method",
            order=[c for c in classes if c in set(g["group"])],
            hue_order=methods,
            palette=method_palette(methods),
            ax=ax,
            legend=ax is axes.flat[0],
        )
        ax.set(title=label, xlabel="gold majority class", ylabel="")
    _figure_legend(fig, axes.flat[0], len(methods))
    fig.suptitle(title)
    return fig


DEGRADATION_METRICS: tuple[str, ...] = ("jsd", "bc", "acc", "f1", "wf1")


def paper_ambiguity_findings(dataset: str | None = None) -> pd.DataFrame:
    """What the paper's Section 5.2 reports across ambiguity levels (`resources/paper_ambiguity_findings.csv`):
    per dataset, method (registry name) and metric, a `quantity` (`change_%` low->high, a level's value,
    or `p` of the degradation test), its `relation` (= or >), `value`, and the sentence it comes from."""
    with resources.files("shala_lib.resources").joinpath("paper_ambiguity_findings.csv").open() as fh:
        table = pd.read_csv(fh)
    return table if dataset is None else table[table["dataset"] == dataset].reset_index(drop=True)


def _item_values(part: pd.DataFrame, metric: str) -> np.ndarray | None:
    """Per-item values a degradation test can rank: a per-item metric's, or correctness for accuracy;
    None for a set metric (F1, W-F1: one value per level, no test)."""
    if metric in part.columns and get_metric(metric).per_item is not None:
        return part[metric].to_numpy(dtype=float)
    if metric == "acc":
        return part["correct"].to_numpy(dtype=float)
    return None


def _paper_text(found: pd.DataFrame) -> str:
    parts = []
    for _, r in found.iterrows():
        what = {"change_%": "change", "p": "p"}.get(r["quantity"], str(r["quantity"]))
        unit = "%" if r["quantity"] == "change_%" else ""
        value = f"{r['value']:+}" if r["quantity"] == "change_%" else f"{r['value']}"  # -32.0, 0.97
        parts.append(f"{what} {r['relation']} {value}{unit}".replace(" = ", " "))
    return "; ".join(parts)


def degradation_table(
    scores: pd.DataFrame,
    grouped: pd.DataFrame,
    order: Sequence[str],
    metrics: Sequence[str] = DEGRADATION_METRICS,
    dataset: str | None = None,
) -> pd.DataFrame:
    """Section 5.2 for every metric: one row per method and metric with its value per ambiguity level
    (`grouped`, from `grouped_metrics`), the relative change from the first level to the last
    (`change_%`, plain (last - first) / first: a drop is negative whatever the metric's direction, as
    the paper's "decreases by 32.0%"), and the degradation tests on the per-item values (`scores`, from
    `per_item_scores`): Kruskal-Wallis across levels and Spearman's trend, for per-item metrics and for
    accuracy (per-item correctness); NaN for the set metrics F1 and W-F1. With `dataset`, the paper's
    reported numbers for the same method and metric (`paper_ambiguity_findings`) are beside ours:
    `paper_change_%` and `paper` (everything it reports, e.g. "change -28.56%; low 0.97; high 0.693")."""
    paper = paper_ambiguity_findings(dataset) if dataset is not None else paper_ambiguity_findings().iloc[:0]
    levels = grouped[grouped["group"] != "all"]
    first, last = order[0], order[-1]
    rows = []
    for method, part in scores.groupby("method", sort=False):
        by_level = levels[levels["method"] == method].set_index("group")
        for metric in metrics:
            values = {lvl: float(by_level.loc[lvl, metric]) if lvl in by_level.index else np.nan for lvl in order}
            a, b = values[first], values[last]
            item_values = _item_values(part, metric)
            if item_values is None:
                test = {"p_kruskal": np.nan, "spearman_rho": np.nan, "p_spearman": np.nan}
            else:
                test = degradation_test(item_values, part["ambiguity_level"].to_numpy(), order)
            found = paper[(paper["method"] == method) & (paper["metric"] == metric)]
            change = found.loc[found["quantity"] == "change_%", "value"]
            rows.append(
                {
                    "method": method_label(method),
                    "metric": metric_label(metric),
                    **values,
                    "change_%": (b - a) / abs(a) * 100 if a and np.isfinite(a) else np.nan,
                    "p_kruskal": test["p_kruskal"],
                    "spearman_rho": test["spearman_rho"],
                    "p_spearman": test["p_spearman"],
                    "paper_change_%": float(change.iloc[0]) if len(change) else np.nan,
                    "paper": _paper_text(found),
                }
            )
    return pd.DataFrame(rows)
