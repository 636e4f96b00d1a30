import numpy as np
import pandas as pd
import pytest

from shala_lib.data.specs import CHAOSNLI, GOEMOTIONS
from shala_lib.evaluation.tables import (
    JSD_E_TO_2,
    block_scores,
    published_results,
    rank_marks,
    table1,
    table2,
    table2_blocks,
    table_blocks,
)


def _scores():
    return pd.DataFrame(
        {
            "method": ["zero_shot", "mls", "shala", "majority_oracle"],
            "jsd": [0.375, 0.477, 0.181, 0.100],
            "jsd_e": [0.31, 0.40, 0.15, 0.08],
            "bc": [0.850, 0.751, 0.966, 0.99],
            "acc": [0.603, 0.699, 0.768, 1.0],
            "f1": [0.473, 0.650, 0.758, 1.0],
            "wf1": [0.547, 0.684, 0.767, 1.0],
            "n_unparsable": [5, 0, 1, 0],
        }
    )


def test_rank_marks_follow_metric_direction_and_skip_data_only_rows():
    marks = rank_marks(_scores())
    assert marks["jsd"].tolist() == ["second", "", "best", ""]  # lower is better; oracle not ranked
    assert marks["acc"].tolist() == ["", "second", "best", ""]


def test_table1_like_the_paper():
    md = table1(_scores()).set_index("Method")
    assert md.loc["SHALA-LLM", "JSD"] == "**0.181 (+51.7%)**"
    assert md.loc["MLS", "JSD"] == "0.477 (-27.2%)"
    assert md.loc["Zero-shot", "JSD"] == "<u>0.375</u>"
    assert md.loc["MLS", "Acc"] == "<u>0.699 (+15.9%)</u>"
    assert md.loc["Zero-shot", "Unparsable"] == 5
    tex = table1(_scores(), style="latex").set_index("Method")
    assert tex.loc["SHALA-LLM", "BC"] == "\\textbf{0.966 (+13.6%)}"


def test_published_results_have_sources_and_bases():
    pub = published_results()
    assert pub["source"].notna().all() and set(pub["jsd_log_base"].astype(str)) == {"2", "e"}
    shala = pub[(pub["dataset"] == "chaosnli") & (pub["method"] == "SHALA-LLM")].iloc[0]
    assert (shala["jsd"], shala["bc"], shala["acc"]) == (0.181, 0.966, 0.768)
    t2 = table2(_scores().assign(method=["Zero-shot", "MLS", "SHALA-LLM", "oracle"]), "chaosnli_snli")
    bench = t2[(t2["origin"] == "published") & (t2["method"] == "Chaos-Benchmark")].iloc[0]
    assert bench["jsd_base2"] == pytest.approx(0.220 * 1.2011, abs=1e-3)
    assert JSD_E_TO_2 == pytest.approx(1.2011224)
    assert (t2.loc[t2["origin"] == "ours", "source"] == "this workbench").all()
    assert np.allclose(t2.loc[t2["origin"] == "ours", "jsd_base2"], _scores()["jsd"])


def test_chaosnli_tables_have_the_papers_three_blocks():
    """Table 1 and 2 have ChaosNLI, ChaosNLI-M and ChaosNLI-S blocks: the same predictions scored per
    subset, each block ranked and compared with its own zero-shot row."""
    items = pd.DataFrame({"id": list("abcd"), "subset": ["snli", "mnli", "mnli", "snli"]})
    blocks = table_blocks(CHAOSNLI, items)
    assert [(b.name, b.key, b.mask.tolist()) for b in blocks] == [
        ("ChaosNLI", "chaosnli", [True] * 4),
        ("ChaosNLI-M", "chaosnli_mnli", [False, True, True, False]),
        ("ChaosNLI-S", "chaosnli_snli", [True, False, False, True]),
    ]
    assert [b.name for b in table_blocks(GOEMOTIONS, items.drop(columns="subset"))] == ["GoEmotions"]
    gold = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0, 1.0, 0]])
    preds = {"zero_shot": np.tile([1.0, 0, 0], (4, 1)), "shala": gold.copy()}
    scores = block_scores(preds, gold, CHAOSNLI.classes, blocks)
    assert scores["block"].tolist() == ["ChaosNLI"] * 2 + ["ChaosNLI-M"] * 2 + ["ChaosNLI-S"] * 2
    acc = scores.set_index(["block", "method"])["acc"]
    assert acc["ChaosNLI", "zero_shot"] == 0.25 and acc["ChaosNLI-M", "zero_shot"] == 0.0
    assert acc["ChaosNLI-S", "zero_shot"] == 0.5 and (scores.loc[scores["method"] == "shala", "acc"] == 1).all()
    t1 = table1(scores, style="plain")
    assert t1.columns[0] == "Dataset" and t1["Dataset"].tolist() == ["ChaosNLI", "", "ChaosNLI-M", "", "ChaosNLI-S", ""]
    assert t1["Acc"].tolist() == ["0.250", "1.000 (+300.0%)", "0.000", "1.000", "0.500", "1.000 (+100.0%)"]
    t2 = table2_blocks(
        scores.assign(method=scores["method"].map({"zero_shot": "Zero-shot", "shala": "SHALA-LLM"})), blocks
    )
    published = t2[t2["origin"] == "published"]
    assert set(published.loc[published["block"] == "ChaosNLI-M", "dataset"]) == {"chaosnli_mnli"}
    m = published[(published["block"] == "ChaosNLI-M") & (published["method"] == "SHALA-LLM")].iloc[0]
    assert (m["jsd"], m["bc"], m["acc"]) == (0.173, 0.972, 0.760)  # the paper's ChaosNLI-M row
    assert t2.groupby("block")["origin"].apply(lambda o: (o == "ours").sum()).to_dict() == {
        "ChaosNLI": 2,
        "ChaosNLI-M": 2,
        "ChaosNLI-S": 2,
    }
