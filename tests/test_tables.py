import numpy as np
import pandas as pd
import pytest

from shala_lib.tables import JSD_E_TO_2, published_results, rank_marks, table1, table2


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
    assert md.loc["shala", "JSD"] == "**0.181 (+51.7%)**"
    assert md.loc["mls", "JSD"] == "0.477 (-27.2%)"
    assert md.loc["zero_shot", "JSD"] == "<u>0.375</u>"
    assert md.loc["mls", "Acc"] == "<u>0.699 (+15.9%)</u>"
    assert md.loc["zero_shot", "Unparsable"] == 5
    tex = table1(_scores(), style="latex").set_index("Method")
    assert tex.loc["shala", "BC"] == "\\textbf{0.966 (+13.6%)}"


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
