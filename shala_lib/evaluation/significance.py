"""Statistics users ask for: bootstrap confidence intervals, paired tests, degradation tests."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from shala_lib.scoring.metrics import Unparsable, evaluate


def bootstrap_ci(
    pred: np.ndarray,
    gold: np.ndarray,
    classes: Sequence[str],
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    unparsable: Unparsable = "uniform",
    metrics: Sequence[str] = ("jsd", "bc", "acc", "f1", "wf1"),
) -> pd.DataFrame:
    """Percentile bootstrap CI of each metric, resampling items with replacement (seeded)."""
    pred = np.asarray(pred, dtype=float)
    gold = np.asarray(gold, dtype=float)
    rng = np.random.default_rng(seed)
    n = len(gold)
    if n == 0:
        raise ValueError("bootstrap needs at least one item")
    draws = {m: np.empty(n_boot) for m in metrics}
    for b in range(n_boot):
        idx = rng.integers(0, n, n)
        res = evaluate(pred[idx], gold[idx], classes, unparsable=unparsable)
        for m in metrics:
            draws[m][b] = res[m]
    point = evaluate(pred, gold, classes, unparsable=unparsable)
    rows = []
    for m in metrics:
        lo, hi = np.nanpercentile(draws[m], [100 * alpha / 2, 100 * (1 - alpha / 2)])
        rows.append({"metric": m, "value": point[m], "ci_low": float(lo), "ci_high": float(hi), "n_boot": n_boot})
    return pd.DataFrame(rows)


def paired_test(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0) -> dict[str, float]:
    """Compare two methods on the same items (per-item scores, e.g. JSD).

    Returns the mean difference a - b, its paired-bootstrap 95% CI, and the Wilcoxon
    signed-rank p-value (two-sided; 1.0 when all differences are zero).
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired test needs two 1-D arrays of equal length, got {a.shape} and {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    if d.size == 0:
        raise ValueError("no item has a finite score for both methods")
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, d.size, (n_boot, d.size))].mean(axis=1)
    p = 1.0 if np.allclose(d, 0) else float(stats.wilcoxon(d, zero_method="wilcox").pvalue)
    return {
        "mean_diff": float(d.mean()),
        "ci_low": float(np.percentile(boots, 2.5)),
        "ci_high": float(np.percentile(boots, 97.5)),
        "p_wilcoxon": p,
        "n": int(d.size),
    }


def degradation_test(values: np.ndarray, levels: Sequence[str], order: Sequence[str]) -> dict[str, float]:
    """Does a per-item score change across ambiguity levels?

    Kruskal-Wallis H test across levels (any difference) and Spearman's rank correlation
    between the level's rank in `order` and the score (a monotone trend).
    """
    values = np.asarray(values, dtype=float)
    lv = np.asarray(levels, dtype=object)
    groups = [values[(lv == lvl) & np.isfinite(values)] for lvl in order]
    groups = [g for g in groups if g.size > 0]
    out = {
        "kruskal_h": math.nan,
        "p_kruskal": math.nan,
        "spearman_rho": math.nan,
        "p_spearman": math.nan,
        "n_levels": float(len(groups)),
    }
    if len(groups) >= 2:
        if np.ptp(np.concatenate(groups)) > 0:
            h = stats.kruskal(*groups)
            out["kruskal_h"], out["p_kruskal"] = float(h.statistic), float(h.pvalue)
        else:
            out["kruskal_h"], out["p_kruskal"] = 0.0, 1.0
    rank = {lvl: i for i, lvl in enumerate(order)}
    mask = np.isfinite(values) & np.array([x in rank for x in lv])
    if mask.sum() > 2 and len(set(lv[mask])) > 1:
        r = stats.spearmanr([rank[x] for x in lv[mask]], values[mask])
        out["spearman_rho"], out["p_spearman"] = float(r.statistic), float(r.pvalue)
    return out
