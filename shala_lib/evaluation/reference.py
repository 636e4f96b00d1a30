"""Reference predictions computed from data alone, so every table can be read honestly.

- uniform: 1/C for every class.
- constant_mean: the mean annotator distribution of the training split, for every item.
- majority_oracle: one-hot on the gold majority label (knows the test labels: an upper bound
  for accuracy that shows what collapsing to one label costs in JSD).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

REFERENCE_METHODS: tuple[str, ...] = ("uniform", "constant_mean", "majority_oracle")


def stack(col: pd.Series) -> np.ndarray:
    """A column of lists (dist/counts) as a 2-D float array."""
    return np.asarray(col.tolist(), dtype=float)


def uniform(n_items: int, n_classes: int) -> np.ndarray:
    return np.full((n_items, n_classes), 1.0 / n_classes)


def constant_mean(train: pd.DataFrame, n_items: int) -> np.ndarray:
    if len(train) == 0:
        raise ValueError("constant_mean needs a non-empty training split")
    mean = stack(train["dist"]).mean(axis=0)
    return np.tile(mean / mean.sum(), (n_items, 1))


def majority_oracle(gold: np.ndarray) -> np.ndarray:
    gold = np.asarray(gold, dtype=float)
    out = np.zeros_like(gold)
    out[np.arange(len(gold)), np.argmax(gold, axis=1)] = 1.0
    return out


def reference_predictions(
    table: pd.DataFrame, split: str = "test", items: pd.DataFrame | None = None
) -> dict[str, np.ndarray]:
    """Every reference method's predictions for `items` (default: the items of `split`), in their
    order. The constant mean always comes from the table's training split."""
    target = table[table["split"] == split] if items is None else items
    gold = stack(target["dist"])
    n, c = gold.shape
    return {
        "uniform": uniform(n, c),
        "constant_mean": constant_mean(table[table["split"] == "train"], n),
        "majority_oracle": majority_oracle(gold),
    }
