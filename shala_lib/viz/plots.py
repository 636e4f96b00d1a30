"""Figures (matplotlib/seaborn). Every function returns the figure; `save_figure` writes PNG + PDF."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from shala_lib.data.specs import DatasetSpec
from shala_lib.scoring.methods import method_palette

TRAINING_CURVES: tuple[tuple[str, str], ...] = (
    ("reward", "reward (mean)"),
    ("reward_std", "reward std"),
    ("parse_fail_rate", "unparsable fraction"),
    ("frac_reward_zero_std", "zero-variance groups"),
)


def save_figure(fig: plt.Figure, directory: str | Path, name: str) -> list[Path]:
    """PNG and PDF; the PDF carries no creation date, so a regenerated figure diffs only if it changed.
    The PNG's text metadata lists the panels (`Panels`: each axes' title, else its y label), so a
    reader (or a test) can tell what a figure file shows: see `figure_panels`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{name}.png", directory / f"{name}.pdf"]
    panels = [ax.get_title() or ax.get_ylabel() for ax in fig.axes if ax.get_visible() and ax.has_data()]
    from shala_lib.files import atomic_path

    with atomic_path(paths[0]) as tmp:  # written beside, renamed into place: never half a figure
        fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight", metadata={"Panels": json.dumps(panels)})
    with atomic_path(paths[1]) as tmp:  # same figure, same bytes: no creation date
        fig.savefig(tmp, format="pdf", bbox_inches="tight", metadata={"CreationDate": None})
    return paths


def figure_panels(png: str | Path) -> list[str]:
    """The panels recorded by `save_figure` in a PNG's metadata."""
    from PIL import Image

    with Image.open(png) as img:
        text = img.info.get("Panels")
    if text is None:
        raise ValueError(f"{png}: no Panels metadata (not written by shala_lib.viz.plots.save_figure)")
    return list(json.loads(text))


def plot_ambiguity(df: pd.DataFrame, spec: DatasetSpec) -> plt.Figure:
    """Left: normalized-entropy histogram by subset; right: items per ambiguity level and split."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    hue = "subset" if df["subset"].nunique() > 1 else None
    sns.histplot(data=df, x="entropy_norm", hue=hue, bins=30, ax=axes[0], element="step")
    axes[0].set(xlabel="normalized entropy H~", ylabel="items", title=f"{spec.display_name}: annotator disagreement")
    if spec.ambiguity_scheme == "entropy":
        for x in (0.33, 0.66):
            axes[0].axvline(x, color="grey", ls="--", lw=1)
    order = list(spec.levels)
    sns.countplot(
        data=df, x="ambiguity_level", hue="split", order=order, ax=axes[1], hue_order=["train", "validation", "test"]
    )
    axes[1].set(
        xlabel="ambiguity level" if spec.ambiguity_scheme == "entropy" else "active labels",
        ylabel="items",
        title="items per ambiguity level and split",
    )
    fig.tight_layout()
    return fig


def plot_training_curves(metrics: pd.DataFrame, title: str = "") -> plt.Figure:
    """Reward, reward std, unparsable fraction and zero-variance groups per step (TRL logs)."""
    cols = [(c, label) for c, label in TRAINING_CURVES if c in metrics.columns]
    if "val_jsd" in metrics.columns:
        cols.append(("val_jsd", "validation JSD"))
    fig, axes = plt.subplots(1, max(len(cols), 1), figsize=(3.4 * max(len(cols), 1), 3))
    axes = [axes] if len(cols) <= 1 else list(axes)
    hue = "method" if "method" in metrics.columns else None
    # each method in its colour of every other figure
    palette = method_palette(list(dict.fromkeys(metrics["method"]))) if hue else None
    for ax, (col, label) in zip(axes, cols):
        sns.lineplot(
            data=metrics.dropna(subset=[col]),
            x="step",
            y=col,
            hue=hue,
            palette=palette,
            ax=ax,
            marker="o",
            legend=ax is axes[0],
        )
        ax.set(title=label, xlabel="optimizer step", ylabel="")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_learning_check(groups: pd.DataFrame, classes: tuple[str, ...]) -> plt.Figure:
    """The learning check's figure: per method (rows) and cue group (columns), the held-out mean answer of
    each seed beside the raters' mean, class by class (`training.learning_check.group_table`)."""
    records = []
    for _, r in groups.iterrows():
        where = {"method": r["method"], "cue group": r["cue group"]}
        for c in classes:
            records.append({**where, "class": c, "who": "raters", "p": r[f"raters {c}"]})
            records.append({**where, "class": c, "who": f"model, seed {r['seed']}", "p": r[f"model {c}"]})
    df = pd.DataFrame(records).drop_duplicates()
    methods = list(dict.fromkeys(df["method"]))
    cue_groups = sorted(df["cue group"].unique())
    fig, axes = plt.subplots(
        len(methods), len(cue_groups), figsize=(3.2 * len(cue_groups), 2.6 * len(methods)), sharey=True, squeeze=False
    )
    hue_order = ["raters", *sorted(w for w in df["who"].unique() if w != "raters")]
    palette = dict(zip(hue_order, ["#444444", *sns.color_palette("Set2", len(hue_order) - 1)]))
    for i, m in enumerate(methods):
        for j, g in enumerate(cue_groups):
            ax = axes[i, j]
            part = df[(df["method"] == m) & (df["cue group"] == g)]
            sns.barplot(
                data=part, x="class", y="p", hue="who", hue_order=hue_order, palette=palette, order=list(classes), ax=ax
            )
            ax.set(title=f"{m}: {g}", xlabel="", ylabel="mean probability" if j == 0 else "", ylim=(0, 1))
            legend = ax.get_legend()
            if legend is not None and (i, j) != (0, len(cue_groups) - 1):
                legend.remove()
            elif legend is not None:
                legend.set_title("")
    fig.suptitle("Learning check: held-out mean answer per cue group vs the raters")
    fig.tight_layout()
    return fig
