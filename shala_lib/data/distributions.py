"""Empirical label distributions, normalized entropy, majority labels and ambiguity levels.

Everything is vectorised over rows: a 2-D array has one item per row and one class per column,
in the dataset's class order (paper eq. 2 and eq. 9).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from shala_lib.data.specs import ACTIVE_LABEL_LEVELS, ENTROPY_LEVELS, AmbiguityScheme

ENTROPY_BINS: tuple[float, float] = (0.33, 0.66)


def counts_from_labels(labels: Iterable[str], classes: Sequence[str]) -> np.ndarray:
    """Per-class counts from a list of rater labels. Unknown labels raise ValueError."""
    index = {c: i for i, c in enumerate(classes)}
    counts = np.zeros(len(classes), dtype=float)
    for lab in labels:
        try:
            counts[index[lab]] += 1
        except KeyError:
            raise ValueError(f"unknown label {lab!r}; expected one of {list(classes)}") from None
    return counts


def distribution(counts: np.ndarray | Sequence[float] | Sequence[Sequence[float]]) -> np.ndarray:
    """Empirical distribution p_q,c = n_q,c / sum_c n_q,c (paper eq. 2), row-wise.

    Raises ValueError on negative or non-finite counts and on rows with zero ratings.
    """
    arr = np.asarray(counts, dtype=float)
    if arr.ndim not in (1, 2):
        raise ValueError(f"counts must be 1-D or 2-D, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("counts contain NaN or infinite values")
    if np.any(arr < 0):
        raise ValueError("counts contain negative values")
    totals = arr.sum(axis=-1, keepdims=True)
    if np.any(totals <= 0):
        bad = np.flatnonzero(np.atleast_1d(totals.squeeze(-1)) <= 0)
        raise ValueError(f"row(s) with zero ratings: {bad[:10].tolist()}")
    return arr / totals


def normalized_entropy(dist: np.ndarray | Sequence[float] | Sequence[Sequence[float]]) -> np.ndarray:
    """H~(p) = -sum p log p / log C in [0, 1] (paper eq. 9), row-wise; 0 log 0 = 0."""
    p = np.asarray(dist, dtype=float)
    n_classes = p.shape[-1]
    if n_classes < 2:
        raise ValueError("normalized entropy needs at least two classes")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    h = -terms.sum(axis=-1) / np.log(n_classes)
    return np.clip(h, 0.0, 1.0)


def majority_index(dist: np.ndarray) -> np.ndarray:
    """Argmax in class order; ties go to the first class in that order."""
    return np.argmax(np.asarray(dist, dtype=float), axis=-1)


def n_active(dist: np.ndarray) -> np.ndarray:
    """Number of classes with non-zero mass."""
    return (np.asarray(dist, dtype=float) > 0).sum(axis=-1)


def entropy_level(h: np.ndarray | float, bins: tuple[float, float] = ENTROPY_BINS) -> np.ndarray:
    """low [0,0.33), medium [0.33,0.66), high [0.66,1] (paper App. C.2.1; other edges by `bins`)."""
    h_arr = np.atleast_1d(np.asarray(h, dtype=float))
    idx = np.digitize(h_arr, bins, right=False)
    return np.asarray(ENTROPY_LEVELS, dtype=object)[idx]


def active_label_level(k: np.ndarray | int) -> np.ndarray:
    """'1', '2', '3', '4+' active labels (paper App. C.2.2-C.2.3)."""
    k_arr = np.atleast_1d(np.asarray(k, dtype=int))
    if np.any(k_arr < 1):
        raise ValueError("an item needs at least one active label")
    idx = np.minimum(k_arr, 4) - 1
    return np.asarray(ACTIVE_LABEL_LEVELS, dtype=object)[idx]


def ambiguity_level(dist: np.ndarray, scheme: AmbiguityScheme, bins: tuple[float, float] = ENTROPY_BINS) -> np.ndarray:
    """Ambiguity level of each row under a dataset's scheme (entropy edges `bins`)."""
    if scheme == "entropy":
        return entropy_level(normalized_entropy(dist), bins)
    if scheme == "active_labels":
        return active_label_level(n_active(dist))
    raise ValueError(f"unknown ambiguity scheme {scheme!r}")
