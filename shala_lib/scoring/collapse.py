"""Collapse detection: is a run's output the same answer whatever the input?

Small models trained with distributional rewards tend to settle on one hedged answer for every
item (e.g. `{1, 1, 1}`, scored uniform), which can look like learning in a JSD column. Three
statistics tell it apart, for any set of predictions against the human distributions:

- `n_distinct`: how many different predicted distributions there are (rounded to 3 decimals);
- `max_class_std`: the largest across-item standard deviation of one class's predicted
  probability (0 when every item gets the same answer);
- `jsd_best_constant`: the mean JSD of the best constant answer on the same items (the one
  distribution that minimises the mean JSD to these items' human distributions: an oracle no
  input-blind model can beat), and `jsd_vs_best_constant`, the run's JSD minus it (< 0: better
  than any constant answer).

A run is flagged `input_independent` when it has one distinct answer or its class
probabilities hardly move across items (`max_class_std` < `STD_TOL`). Unparsable outputs are scored
as the metrics score them (uniform by default).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
from scipy.optimize import minimize

from shala_lib.scoring.metrics import Unparsable, handle_unparsable, js_distance

log = logging.getLogger(__name__)
STD_TOL = 0.01
DECIMALS = 3


def best_constant(gold: np.ndarray) -> np.ndarray:
    """The distribution c minimising mean_i JSD(c, gold_i) (base 2), over the simplex.

    Optimised over softmax logits from the mean human distribution (a good start: the mean
    minimises the mean squared error); the mean itself is returned when the optimum is no better.
    """
    g = np.atleast_2d(np.asarray(gold, dtype=float))
    mean = g.mean(axis=0)

    def loss(z: np.ndarray) -> float:
        c = np.exp(z - z.max())
        c /= c.sum()
        return float(np.mean(js_distance(np.broadcast_to(c, g.shape), g)))

    start = np.log(np.clip(mean, 1e-6, None))
    res = minimize(loss, start, method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-9, "maxiter": 4000})
    c = np.exp(res.x - res.x.max())
    c /= c.sum()
    return c if loss(res.x) <= loss(start) else mean


def collapse_stats(
    pred: np.ndarray, gold: np.ndarray, unparsable: Unparsable = "uniform", constant: np.ndarray | None = None
) -> dict[str, Any]:
    """n_distinct, max_class_std, class_std, jsd_best_constant, jsd_vs_best_constant,
    input_independent (see the module docstring). `constant`: `best_constant(gold)` when the caller
    already has it (several methods scored on the same items); used only when no row is excluded."""
    p_raw = np.atleast_2d(np.asarray(pred, dtype=float))
    g = np.atleast_2d(np.asarray(gold, dtype=float))
    if p_raw.shape != g.shape:
        raise ValueError(f"pred and gold shapes differ: {p_raw.shape} vs {g.shape}")
    p, keep = handle_unparsable(p_raw, unparsable)
    g = g[keep]
    if len(p) == 0:
        nan = float("nan")
        return {
            "n_distinct": 0,
            "max_class_std": nan,
            "class_std": [],
            "jsd_best_constant": nan,
            "jsd_vs_best_constant": nan,
            "input_independent": False,
        }
    n_distinct = len(np.unique(np.round(p, DECIMALS), axis=0))
    class_std = p.std(axis=0)
    c = constant if constant is not None and keep.all() else best_constant(g)
    jsd_const = float(np.mean(js_distance(np.broadcast_to(c, g.shape), g)))
    jsd = float(np.mean(js_distance(p, g)))
    return {
        "n_distinct": int(n_distinct),
        "max_class_std": float(class_std.max()),
        "class_std": [round(float(s), 6) for s in class_std],
        "jsd_best_constant": jsd_const,
        "jsd_vs_best_constant": jsd - jsd_const,
        "input_independent": bool(n_distinct == 1 or class_std.max() < STD_TOL),
    }


def warn_if_collapsed(stats: dict[str, Any], name: str) -> bool:
    """Warn (and log) when `stats` says the predictions do not depend on the input; returns the flag."""
    if not stats.get("input_independent"):
        return False
    msg = (
        f"{name}: predictions are input-independent ({stats['n_distinct']} distinct answer(s), largest "
        f"across-item std of a class probability {stats['max_class_std']:.4f}); its JSD is "
        f"{stats['jsd_vs_best_constant']:+.3f} against the best constant answer ({stats['jsd_best_constant']:.3f})"
    )
    warnings.warn(msg, stacklevel=2)
    log.warning(msg)
    return True
