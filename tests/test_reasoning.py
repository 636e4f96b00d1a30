import numpy as np
import pandas as pd

from shala_lib.data.specs import CHAOSNLI
from shala_lib.evaluation.reasoning import (
    example_tables,
    find_paper_items,
    interpretation_counts,
    mentions_multiple_interpretations,
    paper_example_table,
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


def test_the_papers_reasoning_items_are_found_and_shown_beside_ours(chaos):
    """Tables 3/14-16's items, found by their text in real ChaosNLI (whichever split), in the paper's
    level order, marked with table and split; the paper's reported distributions follow ours."""
    found = find_paper_items(chaos, CHAOSNLI)
    assert found["id"].tolist() == ["40100e", "4519902281.jpg#1r1c", "44834e"]
    assert found["paper_level"].tolist() == ["low", "medium", "high"]
    assert found["paper_tables"].tolist() == ["16", "15", "3, 14"]
    # the human distributions the paper prints (Tables 16, 15, 14)
    assert np.allclose(np.stack(found["dist"]), [[0.95, 0.03, 0.02], [0.0, 0.77, 0.23], [0.45, 0.17, 0.38]])
    assert [s.rsplit(" (", 1)[1] for s in found["source"]] == [f"{sp} split)" for sp in found["split"]]
    assert found["source"].iloc[2].startswith("paper Tables 3, 14 (")
    preds = {
        m: pd.DataFrame({"id": found["id"], "raw_text": SHALA, "pred": [[0.2, 0.5, 0.3]] * 3, "status": "ok"})
        for m in ("zero_shot", "shala")
    }
    tab = paper_example_table(found, preds, CHAOSNLI)
    high = tab[tab["id"] == "44834e"].set_index("method")
    assert high.index.tolist() == ["human", "zero_shot", "shala", "paper: Zero-shot", "paper: SHALA-LLM"]
    assert high.loc["paper: Zero-shot", ["entailment", "neutral", "contradiction"]].tolist() == [0.0, 0.0, 1.0]
    assert high.loc["paper: SHALA-LLM", ["entailment", "neutral", "contradiction"]].tolist() == [0.2, 0.5, 0.3]
    assert high.loc["paper: SHALA-LLM", "source"] == "paper Tables 3, 14"
    assert high.loc["shala", "source"] == "this workbench" and high.loc["shala", "reasoning"] == SHALA
    low = tab[tab["id"] == "40100e"].set_index("method")
    assert low.loc["paper: SHALA-LLM", ["entailment", "neutral", "contradiction"]].tolist() == [0.85, 0.10, 0.05]
    assert (tab["paper_level"].unique() == ["low", "medium", "high"]).all()
    # a dataset without paper items: nothing found
    from shala_lib.data.specs import GOEMOTIONS

    assert find_paper_items(pd.DataFrame({"text": ["x"], "split": ["test"]}), GOEMOTIONS).empty
