"""A learnability probe: a small synthetic disagreement dataset whose answer is written in its words.

Support-inbox triage. Each message carries one cue phrase from one of four cue groups; its 20
simulated raters label it `urgent`, `routine` or `junk` with the group's probabilities:

| cue group | example cue | raters' probabilities (urgent, routine, junk) |
|---|---|---|
| outage  | "the payment service is down"                     | 0.80, 0.15, 0.05 |
| request | "could you update my billing address"             | 0.10, 0.80, 0.10 |
| scam    | "click here to claim your lottery prize"          | 0.05, 0.10, 0.85 |
| unclear | "my invoice shows a charge I do not recognise"    | 0.40, 0.40, 0.20 |

The cue is wrapped in one of several message frames with a sender name, so items differ in their
words but a model only has to find the cue to know the distribution. A model that learns from the
human distributions should give each cue group its own answer; one that collapses gives every
message the same answer, which scores no better than the best constant (`shala_lib.scoring.collapse`).
The table is generated from the seed (no files); `load("triage_probe")` returns it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shala_lib.data.canonical import assign_splits, canonical_table
from shala_lib.data.specs import TRIAGE_PROBE

CUE_GROUPS: dict[str, tuple[tuple[float, float, float], tuple[str, ...]]] = {
    "outage": (
        (0.80, 0.15, 0.05),
        (
            "the payment service is down",
            "our main database stopped responding",
            "nobody can log in since this morning",
            "the checkout page shows an error for every customer",
        ),
    ),
    "request": (
        (0.10, 0.80, 0.10),
        (
            "could you update my billing address",
            "please add me to the newsletter",
            "when is the office closed for the holidays",
            "I would like a copy of last month's receipt",
        ),
    ),
    "scam": (
        (0.05, 0.10, 0.85),
        (
            "click here to claim your lottery prize",
            "you have been selected for a free luxury cruise",
            "cheap designer watches at ninety percent off",
            "earn five thousand dollars a week from home",
        ),
    ),
    "unclear": (
        (0.40, 0.40, 0.20),
        (
            "my invoice shows a charge I do not recognise",
            "the mobile app logs me out now and then",
            "a password reset email I did not ask for arrived",
        ),
    ),
}
FRAMES: tuple[str, ...] = (
    "Hello support, {cue}. Regards, {name}.",
    "Hi, {cue}. Thanks! {name}",
    "Dear team, I am writing because {cue}. Best, {name}",
    "{Cue}. Sent from my phone. {name}",
    "To whom it may concern: {cue}. {name}",
    "Quick note from {name}: {cue}.",
)
NAMES: tuple[str, ...] = ("Ana", "Ben", "Chloe", "Dev", "Emma", "Femi", "Grace", "Hiro")
N_RATERS = 20
FRACTIONS = (0.70, 0.15, 0.15)


def triage_probe(n_items: int = 480, seed: int = 42, n_raters: int = N_RATERS) -> pd.DataFrame:
    """The canonical table of `n_items` generated messages (cue groups in turn), with a `cue_group`
    column and a seeded 70/15/15 split."""
    rng = np.random.default_rng(seed)
    groups = list(CUE_GROUPS)
    ids, texts, counts, cue_groups = [], [], [], []
    for i in range(n_items):
        group = groups[i % len(groups)]
        probs, cues = CUE_GROUPS[group]
        cue = cues[rng.integers(len(cues))]
        frame = FRAMES[rng.integers(len(FRAMES))]
        name = NAMES[rng.integers(len(NAMES))]
        ids.append(f"probe{i:04d}")
        texts.append(frame.format(cue=cue, Cue=cue[0].upper() + cue[1:], name=name))
        counts.append(rng.multinomial(n_raters, probs))
        cue_groups.append(group)
    table = canonical_table(
        TRIAGE_PROBE,
        ids,
        np.asarray(counts),
        {"message": texts},
        "probe",
        [n_raters] * n_items,
        extra={"cue_group": cue_groups},
    )
    return assign_splits(table, FRACTIONS, seed=seed)


def cue_group_answers(pred: np.ndarray, groups: np.ndarray, gold: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Per cue group (sorted): the mean predicted distribution (`answer`; an unparsable row, non-finite,
    counts as the uniform answer), the raters' mean (`raters`, when `gold` is given) and how many
    distinct answers the group got (`n_distinct`, at three decimals)."""
    pred = np.asarray(pred, dtype=float)
    groups = np.asarray(groups)
    rows = []
    for g in sorted(set(groups.tolist())):
        part = pred[groups == g]
        part = np.where(np.isfinite(part).all(axis=1, keepdims=True), part, 1.0 / pred.shape[1])
        row: dict[str, Any] = {"cue_group": g, "answer": [round(float(v), 3) for v in part.mean(axis=0)]}
        if gold is not None:
            row["raters"] = [round(float(v), 3) for v in np.asarray(gold, dtype=float)[groups == g].mean(axis=0)]
        row["n_distinct"] = len(np.unique(part.round(3), axis=0))
        rows.append(row)
    return rows
