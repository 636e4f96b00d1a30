import numpy as np
import pandas as pd

from shala_lib.data.specs import CHAOSNLI
from shala_lib.evaluation.reasoning import (
    example_tables,
    interpretation_counts,
    mentions_multiple_interpretations,
    pick_examples,
)

# the paper's own reasoning texts (Table 14)
BASELINE = (
    "4. **Multiple Valid Interpretations**: - There are no multiple valid interpretations here. "
    "The premise and hypothesis are clearly in conflict."
)
SHALA = (
    "There are multiple valid interpretations: 1. The premise and hypothesis could be seen as contradictory "
    "because ... 2. Alternatively, the premise could be interpreted as a shift in focus."
)
LOW = "There is no ambiguity in this relationship, and the hypothesis is a direct consequence of the premise."


def test_mentions_multiple_interpretations_on_paper_examples():
    assert mentions_multiple_interpretations(SHALA)
    assert not mentions_multiple_interpretations(BASELINE)
    assert not mentions_multiple_interpretations(LOW)
    assert mentions_multiple_interpretations("The statement is ambiguous: it may mean either.")
    assert not mentions_multiple_interpretations("")
    assert not mentions_multiple_interpretations(None)


def test_examples_and_counts():
    items = pd.DataFrame(
        {
            "id": list("abcdef"),
            "premise": list("PPPPPP"),
            "hypothesis": list("HHHHHH"),
            "dist": [[1, 0, 0]] * 6,
            "ambiguity_level": ["low", "low", "medium", "high", "high", "high"],
        }
    )
    ex = pick_examples(items, ["low", "medium", "high"], seed=1)
    assert ex["ambiguity_level"].tolist() == ["low", "medium", "high"]
    preds = {
        "shala": pd.DataFrame(
            {
                "id": list("abcdef"),
                "raw_text": [LOW, LOW, SHALA, SHALA, BASELINE, SHALA],
                "pred": [[0.2, 0.5, 0.3]] * 6,
                "status": "ok",
            }
        )
    }
    counts = interpretation_counts(preds, items, ["low", "medium", "high"]).set_index("ambiguity_level")
    assert counts.loc["low", "n_multiple"] == 0 and counts.loc["medium", "share_multiple"] == 1.0
    assert counts.loc["high", "n"] == 3 and counts.loc["high", "share_multiple"] == 2 / 3
    tab = example_tables(ex, preds, CHAOSNLI)
    assert tab["method"].tolist() == ["human", "shala"] * 3
    assert np.allclose(tab.loc[tab["method"] == "shala", "neutral"], 0.5)
