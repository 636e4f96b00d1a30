"""Ambiguity-level and per-class analysis (the paper's Figures 2-7) and the degradation tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from shala_lib.evaluation.significance import degradation_test
from shala_lib.scoring.methods import method_label, method_palette
from shala_lib.scoring.metrics import evaluate_by, evaluate_by_class, figure_metrics, metric_label, per_item


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


def degradation_table(scores: pd.DataFrame, order: Sequence[str], metric: str = "jsd") -> pd.DataFrame:
    """Per method: mean per level, relative change low->high, Kruskal-Wallis and Spearman tests."""
    rows = []
    for method, part in scores.groupby("method", sort=False):
        means = part.groupby("ambiguity_level")[metric].mean()
        first, last = means.get(order[0], np.nan), means.get(order[-1], np.nan)
        test = degradation_test(part[metric].to_numpy(), part["ambiguity_level"].to_numpy(), order)
        rows.append(
            {
                "method": method_label(method),
                **{f"{metric}_{lvl}": means.get(lvl, np.nan) for lvl in order},
                f"change_{order[0]}_to_{order[-1]}_%": (last - first) / abs(first) * 100 if first else np.nan,
                "p_kruskal": test["p_kruskal"],
                "spearman_rho": test["spearman_rho"],
                "p_spearman": test["p_spearman"],
            }
        )
    return pd.DataFrame(rows)
