"""The collapse detector on hand-made prediction sets: input-independent answers are flagged,
input-dependent ones are not, and the best constant answer is the true minimiser."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from shala_lib.scoring.collapse import best_constant, collapse_stats, warn_if_collapsed

GOLD = np.array(
    [
        [0.8, 0.15, 0.05],
        [0.8, 0.15, 0.05],
        [0.1, 0.8, 0.1],
        [0.1, 0.8, 0.1],
        [0.05, 0.1, 0.85],
        [0.05, 0.1, 0.85],
    ]
)


def test_best_constant_by_hand():
    # two opposite one-hot items: the midpoint (0.5, 0.5) scores JSD 0.5579 on each, but answering
    # one of them scores 0 and 1, mean 0.5: the best constant is a vertex, not the symmetric point
    gold = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert jensenshannon([0.5, 0.5], gold[0], base=2) == pytest.approx(0.55792, abs=1e-4)
    c = best_constant(gold)
    assert np.mean([jensenshannon(c, g, base=2) for g in gold]) == pytest.approx(0.5, abs=1e-3)
    assert c.max() == pytest.approx(1.0, abs=1e-3)
    # on GOLD it beats the mean and any perturbation of it
    c = best_constant(GOLD)
    mean_jsd = lambda q: np.mean([jensenshannon(q, g, base=2) for g in GOLD])  # noqa: E731
    assert mean_jsd(c) <= mean_jsd(GOLD.mean(axis=0)) + 1e-9
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = np.clip(c + rng.normal(0, 0.02, 3), 1e-6, None)
        assert mean_jsd(c) <= mean_jsd(q / q.sum()) + 1e-7


def test_input_independent_answers_are_flagged():
    same = np.tile([1 / 3, 1 / 3, 1 / 3], (6, 1))  # "{1, 1, 1}" for every item
    s = collapse_stats(same, GOLD)
    assert s["n_distinct"] == 1 and s["input_independent"] and s["max_class_std"] == pytest.approx(0.0)
    assert s["jsd_vs_best_constant"] > 0  # no constant beats the best constant
    assert s["jsd_best_constant"] == pytest.approx(
        np.mean([jensenshannon(best_constant(GOLD), g, base=2) for g in GOLD])
    )
    # many distinct answers that hardly move (< 0.01 std) are still input-independent
    jitter = same + np.array([[0.004, -0.004, 0]] * 3 + [[-0.004, 0.004, 0]] * 3)
    s = collapse_stats(jitter, GOLD)
    assert s["n_distinct"] == 2 and s["input_independent"]
    # unparsable outputs are scored uniform, as in the metrics
    assert collapse_stats(np.full((6, 3), np.nan), GOLD)["input_independent"]
    with pytest.warns(UserWarning, match=r"run x: predictions are input-independent \(1 distinct answer"):
        assert warn_if_collapsed(collapse_stats(same, GOLD), "run x")


def test_input_dependent_answers_are_not_flagged():
    s = collapse_stats(GOLD.copy(), GOLD)
    assert s["n_distinct"] == 3 and not s["input_independent"]
    assert s["jsd_vs_best_constant"] == pytest.approx(-s["jsd_best_constant"])  # perfect: JSD 0
    two_way = np.array([[0.7, 0.2, 0.1]] * 2 + [[0.2, 0.6, 0.2]] * 4)  # separates only the first group
    s = collapse_stats(two_way, GOLD)
    assert s["n_distinct"] == 2 and not s["input_independent"]
    assert s["class_std"] == pytest.approx(two_way.std(axis=0).round(6).tolist())
    assert not warn_if_collapsed(s, "run y")
    with pytest.raises(ValueError, match="shapes differ"):
        collapse_stats(GOLD[:2], GOLD)
