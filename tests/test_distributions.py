import math

import numpy as np
import pytest

from shala_lib.data.distributions import (
    active_label_level,
    ambiguity_level,
    counts_from_labels,
    distribution,
    entropy_level,
    majority_index,
    n_active,
    normalized_entropy,
)


def test_distribution_from_labels_and_counts():
    counts = counts_from_labels(["n", "n", "c", "e", "n"], ["e", "n", "c"])
    assert counts.tolist() == [1, 3, 1]
    assert distribution(counts).tolist() == [0.2, 0.6, 0.2]
    assert distribution([[4, 67, 29]]).tolist() == [[0.04, 0.67, 0.29]]


def test_normalized_entropy_hand_computed():
    # H([.5,.5,0]) = ln 2 / ln 3
    assert normalized_entropy([0.5, 0.5, 0.0]) == pytest.approx(math.log(2) / math.log(3))
    assert normalized_entropy([1 / 3] * 3) == pytest.approx(1.0)
    assert normalized_entropy([1.0, 0.0, 0.0]) == 0.0
    # ChaosNLI README example: entropy 1.0907619 bits for [.04,.67,.29]
    assert normalized_entropy([0.04, 0.67, 0.29]) == pytest.approx(1.0907619435810212 / math.log2(3))


def test_majority_ties_go_to_first_class():
    assert majority_index(np.array([[0.4, 0.4, 0.2], [0.2, 0.4, 0.4], [0.1, 0.2, 0.7]])).tolist() == [0, 1, 2]


def test_levels():
    assert entropy_level([0.0, 0.3299, 0.33, 0.6599, 0.66, 1.0]).tolist() == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
    ]
    assert active_label_level([1, 2, 3, 4, 7]).tolist() == ["1", "2", "3", "4+", "4+"]
    d = np.array([[1, 0, 0, 0], [0.5, 0.5, 0, 0], [0.25] * 4])
    assert n_active(d).tolist() == [1, 2, 4]
    assert ambiguity_level(d, "active_labels").tolist() == ["1", "2", "4+"]


@pytest.mark.parametrize("bad", [[[0, 0, 0]], [[1, -1, 2]], [[1, np.nan, 1]]])
def test_bad_counts_raise(bad):
    with pytest.raises(ValueError):
        distribution(bad)


def test_unknown_label_raises():
    with pytest.raises(ValueError, match="unknown label 'x'"):
        counts_from_labels(["e", "x"], ["e", "n", "c"])
