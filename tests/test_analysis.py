import numpy as np
import pytest

from shala_lib.data.specs import CHAOSNLI
from shala_lib.evaluation.analysis import (
    degradation_table,
    grouped_class_metrics,
    grouped_metrics,
    per_item_scores,
    plot_by_class,
    plot_by_level,
)
from tests.fixtures import six_items


def _data():
    items, gold = six_items()
    preds = {"zero_shot": np.tile([1.0, 0, 0], (6, 1)), "shala": gold.copy()}
    return items, gold, preds


def test_per_item_and_degradation_values():
    items, gold, preds = _data()
    scores = per_item_scores(preds, gold, items)
    assert len(scores) == 12 and set(scores["method"]) == {"zero_shot", "shala"}
    shala = scores[scores["method"] == "shala"]
    assert np.allclose(shala["jsd"], 0) and np.allclose(shala["bc"], 1)
    g = grouped_metrics(preds, gold, CHAOSNLI.classes, items["ambiguity_level"], ["low", "medium", "high"])
    assert g.loc[(g["method"] == "zero_shot") & (g["group"] == "low"), "acc"].item() == 0.5
    deg = degradation_table(scores, g, ["low", "medium", "high"]).set_index(["method", "metric"])
    assert deg.index.get_level_values("metric").unique().tolist() == ["JSD", "BC", "Acc", "F1", "W-F1"]
    # zero-shot one-hot on entailment: JSD low = mean(0, 1) = 0.5
    assert deg.loc[("Zero-shot", "JSD"), "low"] == pytest.approx(0.5)
    assert deg.loc[("SHALA-LLM", "JSD"), "high"] == pytest.approx(0.0)
    assert deg.loc[("SHALA-LLM", "JSD"), "p_kruskal"] == 1.0  # identical scores at every level
    assert deg.loc[("SHALA-LLM", "Acc"), "p_kruskal"] == 1.0  # accuracy: tested on per-item correctness
    assert np.isnan(deg.loc[("SHALA-LLM", "F1"), "p_kruskal"])  # a set metric: no per-item test


def test_section_5_2_for_every_metric_with_the_papers_numbers():
    """Low->high change for JSD, BC, Acc, F1, W-F1 from the per-level values (plain relative change:
    a drop is negative, as the paper's "decreases by 32.0%"), and the paper's reported numbers beside
    ours for the same method and metric. Fixture: zero-shot always says entailment; at low it is right
    on 1 of 2 items (a), at high on 1 of 2 (e)."""
    items, gold, preds = _data()
    preds["mls"] = np.tile([1.0, 0, 0], (6, 1))
    scores = per_item_scores(preds, gold, items)
    g = grouped_metrics(preds, gold, CHAOSNLI.classes, items["ambiguity_level"], ["low", "medium", "high"])
    deg = degradation_table(scores, g, ["low", "medium", "high"], dataset="chaosnli").set_index(["method", "metric"])
    z = g[g["method"] == "zero_shot"].set_index("group")
    for metric, label in (("jsd", "JSD"), ("bc", "BC"), ("acc", "Acc"), ("f1", "F1"), ("wf1", "W-F1")):
        lo, hi = z.loc["low", metric], z.loc["high", metric]
        assert deg.loc[("Zero-shot", label), "change_%"] == pytest.approx((hi - lo) / lo * 100), metric
    # the paper: MLS F1 -40.2%, MLS BC -28.56% (0.970 -> 0.693), SHALA-LLM F1 -32.0%, p > 0.05 for JSD/BC
    assert deg.loc[("MLS", "F1"), "paper_change_%"] == -40.2
    assert deg.loc[("MLS", "BC"), "paper"] == "change -28.56%; low 0.97; high 0.693"
    assert deg.loc[("SHALA-LLM", "F1"), "paper_change_%"] == -32.0
    assert deg.loc[("SHALA-LLM", "F1"), "paper"] == "change -32.0%"
    assert deg.loc[("SHALA-LLM", "JSD"), "paper"] == "p > 0.05"
    assert deg.loc[("Zero-shot", "BC"), "paper"] == "high 0.844"
    assert np.isnan(deg.loc[("SHALA-LLM", "Acc"), "paper_change_%"]) and deg.loc[("SHALA-LLM", "Acc"), "paper"] == ""
    # another dataset: nothing from the paper
    other = degradation_table(scores, g, ["low", "medium", "high"], dataset="goemotions")
    assert other["paper_change_%"].isna().all() and (other["paper"] == "").all()
    # extra metrics on request: the Manhattan distance is a per-item metric, so it is tested
    extra = degradation_table(scores, g, ["low", "medium", "high"], ["manhattan"]).set_index("method")
    assert extra.loc["SHALA-LLM", "metric"] == "Manhattan" and extra.loc["SHALA-LLM", "p_kruskal"] == 1.0


def test_figures_colour_each_method_as_the_paper():
    """MLS purple (the paper's "purple boxplots"), SHALA-LLM green ("green lines"), from the method
    registry: in the boxes and lines of Figure 2."""
    import matplotlib.colors as mcolors
    import seaborn as sns

    from shala_lib.scoring.methods import PAPER_COLORS, method_palette, registered_methods

    pal = method_palette(["mls", "shala"])
    assert pal == {"mls": "#9467bd", "shala": "#2ca02c"} == PAPER_COLORS
    r, gr, b = mcolors.to_rgb(pal["mls"])
    assert r > gr and b > gr  # purple: red and blue over green
    colours = [m.color for m in registered_methods()]
    assert len(set(colours)) == len(colours)  # no two methods share a colour
    items, gold, preds = _data()
    preds = {"mls": preds["zero_shot"], "shala": preds["shala"]}
    scores = per_item_scores(preds, gold, items)
    g = grouped_metrics(preds, gold, CHAOSNLI.classes, items["ambiguity_level"], ["low", "medium", "high"])
    fig = plot_by_level(scores, g, ["low", "medium", "high"])
    faces = {mcolors.to_hex(p.get_facecolor()) for p in fig.axes[0].patches}
    assert mcolors.to_hex(sns.desaturate("#9467bd", 0.75)) in faces
    lines = [mcolors.to_hex(line.get_color()) for line in fig.axes[2].lines if line.get_marker() == "o"]
    assert lines == ["#9467bd", "#2ca02c"]


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
    c = grouped_class_metrics(preds, gold, CHAOSNLI.classes, items["majority"])
    fig = plot_by_class(c, CHAOSNLI.classes)
    assert [ax.get_title() for ax in fig.axes] == ["JSD", "BC", "Accuracy", "F1 of the class"]


def test_per_class_f1_is_the_classs_own_f1_as_in_the_paper():
    """The paper's per-class panels: F1 = 2 Acc / (1 + Acc) within a gold class (0.72 -> 0.84,
    0.33 -> 0.50), i.e. the F1 of that class among its items, not macro F1 over the labels that occur
    in the group. Fixture: 25 entailment items, 18 predicted right (acc 0.72), the rest split over the
    other labels; 9 neutral items, 3 right (acc 0.333)."""
    from shala_lib.scoring.metrics import evaluate_by_class

    onehot = np.eye(3)
    gold_e, gold_n = np.array([0.7, 0.2, 0.1]), np.array([0.1, 0.8, 0.1])
    pred = np.vstack([onehot[[0] * 18 + [1] * 4 + [2] * 3], onehot[[1] * 3 + [0] * 3 + [2] * 3]])
    gold = np.vstack([np.tile(gold_e, (25, 1)), np.tile(gold_n, (9, 1))])
    majority = ["entailment"] * 25 + ["neutral"] * 9
    t = evaluate_by_class(pred, gold, CHAOSNLI.classes, majority).set_index("group")
    assert t.index.tolist() == ["all", "entailment", "neutral"]  # contradiction has no items
    assert t.loc["entailment", "acc"] == pytest.approx(0.72)
    assert t.loc["entailment", "class_f1"] == pytest.approx(2 * 0.72 / 1.72) == pytest.approx(0.8372, abs=1e-4)
    assert t.loc["neutral", "class_f1"] == pytest.approx(0.5)  # acc 1/3 -> 2/3 / (4/3)
    # macro F1 inside the group is another number: over the 3 labels predicted there, 2 score 0
    assert t.loc["entailment", "f1"] == pytest.approx(0.8372 / 3, abs=1e-4)
    assert np.isnan(t.loc["all", "class_f1"])
    # an unparsable row (scored uniform -> argmax entailment) counts as a prediction of the first class
    pred2 = pred.copy()
    pred2[25] = np.nan  # a neutral item that was right becomes unparsable
    t2 = evaluate_by_class(pred2, gold, CHAOSNLI.classes, majority).set_index("group")
    assert t2.loc["neutral", "class_f1"] == pytest.approx(2 * (2 / 9) / (1 + 2 / 9))


def test_saved_figures_are_byte_identical_when_regenerated(tmp_path):
    import hashlib

    import matplotlib.pyplot as plt

    from shala_lib.viz.plots import save_figure

    digests = []
    for _ in range(2):
        fig, ax = plt.subplots()
        ax.bar(["a", "b"], [0.3, 0.7])
        digests.append([hashlib.sha256(p.read_bytes()).hexdigest() for p in save_figure(fig, tmp_path, "f")])
        plt.close(fig)
    assert digests[0] == digests[1]
