"""Distributional and classification metrics, vectorised over items (paper App. E).

Per item: Jensen-Shannon distance (base 2 by default, in [0, 1]; `base=math.e` gives the
natural-log value ChaosNLI's leaderboard used, 1/1.2011 of the base-2 one), Bhattacharyya
coefficient, KL divergence (nats unless `base=`), total variation, Manhattan distance (LeWiDi's).
Hard labels by argmax (ties to the first class) give accuracy, macro F1 and weighted F1. Macro F1
averages over all |Y| classes as App. E defines it (a class absent from both gold and predictions
counts 0); scikit-learn's default (the labels present) is the extra metric `f1_present`.

Table 1 shows the paper's five metrics (`Metric.in_table`); the others (`jsd_e`, `kl`, `tvd`,
`manhattan`, `f1_present`) are computed by `evaluate` and shown where asked (`extra_metrics`).

Unparsable predictions are rows of NaN. How they enter the metrics is `unparsable=`:
  "uniform" (default) scores them as the uniform distribution (argmax -> first class),
  "exclude" drops them. The count is always reported as `n_unparsable`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy

from shala_lib.scoring.registry import Registry

Unparsable = Literal["uniform", "exclude"]


def _as_2d(p: np.ndarray | Sequence[float] | Sequence[Sequence[float]]) -> tuple[np.ndarray, bool]:
    arr = np.asarray(p, dtype=float)
    if arr.ndim == 1:
        return arr[None, :], True
    if arr.ndim != 2:
        raise ValueError(f"expected a 1-D or 2-D array of distributions, got shape {arr.shape}")
    return arr, False


def _check_pair(p: np.ndarray, q: np.ndarray) -> None:
    if p.shape != q.shape:
        raise ValueError(f"shape mismatch: {p.shape} vs {q.shape}")
    finite = np.isfinite(p).all(axis=1) & np.isfinite(q).all(axis=1)
    if ((p < 0) & np.isfinite(p)).any() or ((q < 0) & np.isfinite(q)).any():
        raise ValueError("distributions must be non-negative")
    sums = np.concatenate([p[finite].sum(axis=1), q[finite].sum(axis=1)])
    if sums.size and not np.allclose(sums, 1.0, atol=1e-6):
        worst = float(sums[np.argmax(np.abs(sums - 1.0))])
        raise ValueError(f"rows must sum to 1 (found a row summing to {worst:.6g}); normalize first")


def _finite_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return np.isfinite(p).all(axis=1) & np.isfinite(q).all(axis=1)


def js_distance(p: np.ndarray, q: np.ndarray, base: float = 2.0) -> np.ndarray | float:
    """Jensen-Shannon distance sqrt((KL(p||m) + KL(q||m)) / 2), m = (p+q)/2, row-wise:
    `scipy.spatial.distance.jensenshannon(p, q, base=base, axis=1)` on checked distributions. NaN rows
    give NaN; a row whose divergence rounds to a tiny negative number (scipy's sqrt gives NaN) gives 0."""
    p2, one = _as_2d(p)
    q2, _ = _as_2d(q)
    _check_pair(p2, q2)
    finite = _finite_rows(p2, q2)
    out = np.full(len(p2), np.nan)
    if finite.any():
        with np.errstate(invalid="ignore"):
            js = jensenshannon(p2[finite], q2[finite], base=base, axis=1)
        out[finite] = np.nan_to_num(js, nan=0.0)
    return float(out[0]) if one else out


def bhattacharyya(p: np.ndarray, q: np.ndarray) -> np.ndarray | float:
    """Bhattacharyya coefficient sum sqrt(p q), row-wise, in [0, 1]."""
    p2, one = _as_2d(p)
    q2, _ = _as_2d(q)
    _check_pair(p2, q2)
    out = np.sqrt(p2 * q2).sum(axis=1)
    return float(out[0]) if one else out


def kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = 1e-15, base: float = math.e) -> np.ndarray | float:
    """KL(p || q), in nats by default (`base=2`: bits), with q floored at `eps` and renormalized
    (ChaosNLI's convention)."""
    p2, one = _as_2d(p)
    q2, _ = _as_2d(q)
    _check_pair(p2, q2)
    qf = np.maximum(q2, eps)
    out = np.full(len(p2), np.nan)
    finite = _finite_rows(p2, q2)
    if finite.any():
        # scipy.stats: sum p log(p / q), q renormalised
        out[finite] = entropy(p2[finite], qf[finite], base=base, axis=1)
    return float(out[0]) if one else out


def total_variation(p: np.ndarray, q: np.ndarray) -> np.ndarray | float:
    """Total variation distance 0.5 * sum |p - q|, row-wise."""
    p2, one = _as_2d(p)
    q2, _ = _as_2d(q)
    _check_pair(p2, q2)
    out = 0.5 * np.abs(p2 - q2).sum(axis=1)
    return float(out[0]) if one else out


def manhattan(p: np.ndarray, q: np.ndarray) -> np.ndarray | float:
    """Manhattan (L1) distance sum |p - q|, row-wise, in [0, 2] (LeWiDi's soft-label metric; twice
    the total variation)."""
    p2, one = _as_2d(p)
    q2, _ = _as_2d(q)
    _check_pair(p2, q2)
    out = np.abs(p2 - q2).sum(axis=1)
    return float(out[0]) if one else out


def f1_scores(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, present_only: bool = False
) -> tuple[float, float, np.ndarray]:
    """(macro F1, weighted F1, per-class F1) from integer labels via one confusion matrix.

    Macro averages over all `n_classes` classes (paper App. E: 1/|Y| sum over Y; a class with no
    gold item and no prediction scores 0, as scikit-learn's `labels=range(n), zero_division=0`);
    `present_only=True` averages over the classes present in y_true or y_pred instead
    (scikit-learn's default). Weighted uses the support in y_true.
    """
    cm = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    tp = np.diag(cm).astype(float)
    support = cm.sum(axis=1).astype(float)
    predicted = cm.sum(axis=0).astype(float)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros(n_classes), where=denom > 0)
    present = denom > 0 if present_only else np.ones(n_classes, dtype=bool)
    macro = float(f1[present].mean()) if present.any() else 0.0
    weighted = float((f1 * support).sum() / support.sum()) if support.sum() > 0 else 0.0
    return macro, weighted, f1


@dataclass(frozen=True)
class Metric:
    """One metric, everything the workbench needs to know about it.

    `per_item(pred, gold)` gives one value per item (the metric is their mean, and Figure 2 shows it as
    boxplots per ambiguity level); `aggregate(pred, gold)` gives one value for a set of items (accuracy,
    F1; Figure 2 shows it as lines). Both take (items x classes) arrays with unparsable rows already
    handled. A metric with neither is computed elsewhere (`class_f1`, by `evaluate_by_class`).
    `in_table`: a column of Table 1; `in_figure`: a panel of Figure 2.
    """

    name: str
    label: str
    higher_is_better: bool
    per_item: Callable[[np.ndarray, np.ndarray], np.ndarray | float] | None = None
    aggregate: Callable[[np.ndarray, np.ndarray], float] | None = None
    title: str = ""  # the figure panel's title; the label when empty
    in_table: bool = False
    in_figure: bool = False

    @property
    def panel_title(self) -> str:
        return self.title or self.label


def _labels(pred: np.ndarray, gold: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    return np.argmax(gold, axis=1), np.argmax(pred, axis=1), pred.shape[1]


def accuracy(pred: np.ndarray, gold: np.ndarray) -> float:
    yt, yp, _ = _labels(pred, gold)
    return float(np.mean(yt == yp))


def macro_f1(pred: np.ndarray, gold: np.ndarray) -> float:
    return f1_scores(*_labels(pred, gold))[0]


def weighted_f1(pred: np.ndarray, gold: np.ndarray) -> float:
    return f1_scores(*_labels(pred, gold))[1]


def macro_f1_present(pred: np.ndarray, gold: np.ndarray) -> float:
    """Macro F1 over the labels present in gold or predictions (scikit-learn's default), not the paper's."""
    return f1_scores(*_labels(pred, gold), present_only=True)[0]


_METRICS: Registry[Metric] = Registry("metric")


def register_metric(metric: Metric, replace: bool = False) -> Metric:
    """Add a metric to every table, figure and `evaluate` result that lists metrics (one place)."""
    return _METRICS.register(metric, replace)


def unregister_metric(name: str) -> None:
    _METRICS.unregister(name)


def registered_metrics() -> tuple[Metric, ...]:
    """All metrics, in registration order (the order of `evaluate`'s keys and of table columns)."""
    return _METRICS.entries()


def get_metric(name: str) -> Metric:
    return _METRICS.get(name)


def higher_is_better(name: str) -> bool:
    return get_metric(name).higher_is_better


def metric_label(name: str) -> str:
    return get_metric(name).label


def table_metrics() -> tuple[str, ...]:
    """Table 1's metric columns."""
    return tuple(m.name for m in registered_metrics() if m.in_table)


def extra_metrics() -> tuple[str, ...]:
    """The metrics computed beside the paper's (not Table 1 columns): what a notebook's
    `EXTRA_METRICS` may add to its tables."""
    return tuple(m.name for m in registered_metrics() if not m.in_table and (m.per_item or m.aggregate))


def figure_metrics() -> tuple[Metric, ...]:
    """Figure 2's panels, in order."""
    return tuple(m for m in registered_metrics() if m.in_figure)


for _m in (
    Metric("jsd", "JSD", False, per_item=js_distance, in_table=True, in_figure=True),
    Metric("jsd_e", "JSD (base e)", False, per_item=lambda p, g: js_distance(p, g, base=math.e)),
    Metric("bc", "BC", True, per_item=bhattacharyya, in_table=True, in_figure=True),
    Metric("kl", "KL (nats)", False, per_item=lambda p, g: kl_divergence(g, p)),  # KL(gold || pred), base e
    Metric("tvd", "TVD", False, per_item=total_variation),
    Metric("manhattan", "Manhattan", False, per_item=manhattan),  # LeWiDi's L1 distance
    Metric("acc", "Acc", True, aggregate=accuracy, title="Accuracy", in_table=True, in_figure=True),
    Metric("f1", "F1", True, aggregate=macro_f1, title="Macro F1", in_table=True, in_figure=True),
    Metric("wf1", "W-F1", True, aggregate=weighted_f1, in_table=True),
    Metric("f1_present", "F1 (present labels)", True, aggregate=macro_f1_present),
    Metric("class_f1", "F1 of the class", True),
):
    register_metric(_m)


def handle_unparsable(pred: np.ndarray, unparsable: Unparsable = "uniform") -> tuple[np.ndarray, np.ndarray]:
    """(predictions with unparsable rows handled, mask of rows kept)."""
    p, _ = _as_2d(pred)
    bad = ~np.isfinite(p).all(axis=1)
    if unparsable == "uniform":
        p = p.copy()
        p[bad] = 1.0 / p.shape[1]
        return p, np.ones(len(p), dtype=bool)
    if unparsable == "exclude":
        return p[~bad], ~bad
    raise ValueError(f"unparsable must be 'uniform' or 'exclude', got {unparsable!r}")


def per_item(pred: np.ndarray, gold: np.ndarray, unparsable: Unparsable = "uniform") -> pd.DataFrame:
    """Per-item JSD (base 2 and e), BC, KL, TVD, Manhattan, and correctness of the argmax label."""
    g, _ = _as_2d(gold)
    p, keep = handle_unparsable(pred, unparsable)
    g = g[keep]
    values = {m.name: np.asarray(m.per_item(p, g), dtype=float) for m in registered_metrics() if m.per_item}
    return pd.DataFrame(
        {
            **values,
            "pred_label": np.argmax(p, axis=1),
            "gold_label": np.argmax(g, axis=1),
            "correct": np.argmax(p, axis=1) == np.argmax(g, axis=1),
        },
        index=np.flatnonzero(keep),
    )


def evaluate(
    pred: np.ndarray,
    gold: np.ndarray,
    classes: Sequence[str],
    unparsable: Unparsable = "uniform",
) -> dict[str, float]:
    """Aggregate metrics over items: every registered metric (jsd, jsd_e, bc, kl, tvd, manhattan, acc,
    f1 (macro over all classes), wf1 (weighted), f1_present), n (items scored), n_unparsable,
    parse_rate (usable share of all items, whatever `unparsable`)."""
    p_raw, _ = _as_2d(pred)
    g, _ = _as_2d(gold)
    if p_raw.shape[1] != len(classes) or g.shape[1] != len(classes):
        raise ValueError(f"expected {len(classes)} columns ({list(classes)}), got {p_raw.shape[1]} and {g.shape[1]}")
    if len(p_raw) != len(g):
        raise ValueError(f"{len(p_raw)} predictions for {len(g)} gold distributions")
    n_bad = int((~np.isfinite(p_raw).all(axis=1)).sum())
    p, keep = handle_unparsable(p_raw, unparsable)
    g = g[keep]
    out: dict[str, float] = {
        "n": int(len(p)),
        "n_unparsable": n_bad,
        "parse_rate": 1.0 - n_bad / len(p_raw) if len(p_raw) else float("nan"),
    }
    if len(p) == 0:
        return {**out, **{m.name: float("nan") for m in registered_metrics()}}
    for m in registered_metrics():
        if m.per_item is not None:
            out[m.name] = float(np.mean(m.per_item(p, g)))
        elif m.aggregate is not None:
            out[m.name] = float(m.aggregate(p, g))
    return out


def relative_change(value: float, reference: float, metric: str) -> float:
    """Percent change against a reference, signed so that + means better (paper Table 1)."""
    if reference == 0 or not np.isfinite(reference):
        return float("nan")
    sign = 1.0 if higher_is_better(metric) else -1.0
    return sign * (value - reference) / abs(reference) * 100.0


def format_with_change(value: float, reference: float | None, metric: str, digits: int = 3) -> str:
    """'0.181 (+51.7%)' like the paper's Table 1; the reference itself prints bare, and so does a
    value whose change is undefined (a reference of 0)."""
    change = float("nan") if reference is None or value == reference else relative_change(value, reference, metric)
    if not np.isfinite(change):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ({change:+.1f}%)"


def evaluate_by(
    pred: np.ndarray,
    gold: np.ndarray,
    classes: Sequence[str],
    groups: Sequence[object] | None = None,
    order: Sequence[object] | None = None,
    unparsable: Unparsable = "uniform",
) -> pd.DataFrame:
    """Metrics overall (group 'all') and per group (ambiguity level, gold majority class, ...).

    `groups` holds one label per item; `order` fixes the row order (groups absent from the data
    are left out). Every row carries `n` and `n_unparsable`.
    """
    p, _ = _as_2d(pred)
    g, _ = _as_2d(gold)
    rows = [{"group": "all", **evaluate(p, g, classes, unparsable)}]
    if groups is not None:
        labels = np.asarray(list(groups), dtype=object)
        if len(labels) != len(p):
            raise ValueError(f"{len(labels)} group labels for {len(p)} items")
        keys = list(order) if order is not None else sorted(set(labels.tolist()), key=str)
        for key in keys:
            mask = labels == key
            if mask.any():
                rows.append({"group": key, **evaluate(p[mask], g[mask], classes, unparsable)})
    return pd.DataFrame(rows)


def evaluate_by_class(
    pred: np.ndarray,
    gold: np.ndarray,
    classes: Sequence[str],
    majority: Sequence[str],
    unparsable: Unparsable = "uniform",
) -> pd.DataFrame:
    """`evaluate_by` over gold majority classes (paper Figures 3, 6 and 7), plus `class_f1`: the F1
    of the group's own class among the group's items, which is what the paper's per-class F1 panels
    show. Inside the group every item's gold label is that class, so precision is 1 and
    class_f1 = 2 acc / (1 + acc) (0.72 -> 0.84, 0.33 -> 0.50); `f1` stays the macro F1 over all
    classes (App. E; `f1_present`: over the labels that occur in the group). The 'all' row has no
    class: its class_f1 is NaN."""
    table = evaluate_by(pred, gold, classes, majority, order=classes, unparsable=unparsable)
    p, _ = _as_2d(pred)
    g, _ = _as_2d(gold)
    labels = np.asarray(list(majority), dtype=object)
    class_f1 = [float("nan")]
    for cls in table["group"].iloc[1:]:
        k = list(classes).index(cls)
        part, keep = handle_unparsable(p[labels == cls], unparsable)
        if len(part) == 0:
            class_f1.append(float("nan"))
            continue
        _, _, per_class = f1_scores(np.argmax(g[labels == cls][keep], axis=1), np.argmax(part, axis=1), len(classes))
        class_f1.append(float(per_class[k]))
    return table.assign(class_f1=class_f1)
