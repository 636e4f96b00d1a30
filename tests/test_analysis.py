import numpy as np
import pandas as pd
import pytest

from shala_lib.analysis import degradation_table, grouped_metrics, per_item_scores, plot_by_class, plot_by_level
from shala_lib.specs import CHAOSNLI


def _data():
    items = pd.DataFrame(
        {
            "id": list("abcdef"),
            "ambiguity_level": ["low", "low", "medium", "medium", "high", "high"],
            "majority": ["entailment", "neutral", "neutral", "contradiction", "entailment", "neutral"],
        }
    )
    gold = np.array([[1, 0, 0], [0, 1, 0], [0.2, 0.6, 0.2], [0.2, 0.2, 0.6], [0.4, 0.3, 0.3], [0.3, 0.4, 0.3]])
    preds = {"zero_shot": np.tile([1.0, 0, 0], (6, 1)), "shala": gold.copy()}
    return items, gold, preds


def test_per_item_and_degradation_values():
    items, gold, preds = _data()
    scores = per_item_scores(preds, gold, items)
    assert len(scores) == 12 and set(scores["method"]) == {"zero_shot", "shala"}
    shala = scores[scores["method"] == "shala"]
    assert np.allclose(shala["jsd"], 0) and np.allclose(shala["bc"], 1)
    deg = degradation_table(scores, ["low", "medium", "high"]).set_index("method")
    # zero-shot one-hot on entailment: JSD low = mean(0, 1) = 0.5
    assert deg.loc["Zero-shot", "jsd_low"] == pytest.approx(0.5)
    assert deg.loc["SHALA-LLM", "jsd_high"] == pytest.approx(0.0)
    assert deg.loc["SHALA-LLM", "p_kruskal"] == 1.0  # identical scores at every level
    g = grouped_metrics(preds, gold, CHAOSNLI.classes, items["ambiguity_level"], ["low", "medium", "high"])
    assert g.loc[(g["method"] == "zero_shot") & (g["group"] == "low"), "acc"].item() == 0.5


def test_figures_have_the_expected_panels():
    items, gold, preds = _data()
    scores = per_item_scores(preds, gold, items)
    g = grouped_metrics(preds, gold, CHAOSNLI.classes, items["ambiguity_level"], ["low", "medium", "high"])
    fig = plot_by_level(scores, g, ["low", "medium", "high"])
    assert [ax.get_title() for ax in fig.axes] == [
        "JSD (lower is better)",
        "BC (higher is better)",
        "Accuracy",
        "Macro F1",
    ]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["Zero-shot", "SHALA-LLM"]
    c = grouped_metrics(preds, gold, CHAOSNLI.classes, items["majority"], CHAOSNLI.classes)
    fig = plot_by_class(c, CHAOSNLI.classes)
    assert [ax.get_title() for ax in fig.axes] == ["JSD", "BC", "Accuracy", "Macro F1"]


def test_saved_figures_are_byte_identical_when_regenerated(tmp_path):
    import hashlib

    import matplotlib.pyplot as plt

    from shala_lib.plots import save_figure

    digests = []
    for _ in range(2):
        fig, ax = plt.subplots()
        ax.bar(["a", "b"], [0.3, 0.7])
        digests.append([hashlib.sha256(p.read_bytes()).hexdigest() for p in save_figure(fig, tmp_path, "f")])
        plt.close(fig)
    assert digests[0] == digests[1]
