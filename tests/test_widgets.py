import numpy as np
import pandas as pd

from shala_lib.data.specs import CHAOSNLI
from shala_lib.evaluation.analysis import per_item_scores
from shala_lib.viz.widgets import ALL, RunComparer, SampleInspector


def _setup():
    items = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "dataset": "chaosnli",
            "subset": "snli",
            "split": ["test"] * 3 + ["train"],
            "premise": ["A dog runs.", "A cat sleeps.", "Kids play.", "A man eats."],
            "hypothesis": ["An animal moves.", "A cat is awake.", "Children are outside.", "Food."],
            "dist": [[0.9, 0.05, 0.05], [0.1, 0.2, 0.7], [0.3, 0.4, 0.3], [0.5, 0.5, 0.0]],
            "ambiguity_level": ["low", "medium", "high", "medium"],
            "majority": ["entailment", "contradiction", "neutral", "entailment"],
        }
    )
    zs = pd.DataFrame(
        {
            "id": list("abcd"),
            "pred": [[1, 0, 0], [1, 0, 0], None, [1, 0, 0]],
            "status": ["ok", "ok", "no_json", "ok"],
            "raw_text": ["{..}", "{..}", "1. The", "{..}"],
        }
    )
    sh = pd.DataFrame(
        {
            "id": list("abcd"),
            "pred": [[0.8, 0.1, 0.1], [0.1, 0.2, 0.7], [0.3, 0.4, 0.3], [0.5, 0.5, 0]],
            "status": "ok",
            "raw_text": "{..}",
        }
    )
    return items, {"zero_shot": zs, "shala": sh}


def test_inspector_filters_and_steps():
    items, preds = _setup()
    ins = SampleInspector(items, preds, CHAOSNLI)
    assert ins.ids == ["a", "b", "c", "d"] and ins.position.value == "1 / 4"
    ins.split.value = "test"
    assert ins.ids == ["a", "b", "c"]
    ins.level.value = "medium"
    assert ins.ids == ["b"]
    ins.level.value = ALL
    ins.disagree.value = True  # b: zero-shot says entailment, SHALA contradiction; c: zero-shot unparsable
    assert ins.ids == ["b"]
    ins.disagree.value = False
    ins.search.value = "cat"
    assert ins.ids == ["b"]
    ins.search.value = ""
    ins.next.click()
    assert ins.current_id == "b"
    ins.prev.click()
    ins.prev.click()
    assert ins.current_id == "c"  # wraps around
    s = ins.summary("c").set_index("method")
    assert np.isnan(s.loc["zero_shot", "jsd"]) and s.loc["zero_shot", "status"] == "no_json"
    assert s.loc["shala", "jsd"] == 0.0 and s.loc["human", "neutral"] == 0.4
    fig = ins.figure("c")  # grouped bars: 3 classes x (human + 2 methods)
    assert len(fig.axes[0].patches) == 9 and [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "human",
        "Zero-shot",
        "SHALA-LLM",
    ]


def test_comparer_worst_items_click_into_inspector():
    items, preds = _setup()
    ins = SampleInspector(items, preds, CHAOSNLI)
    gold = np.asarray(items["dist"].tolist())
    arrays = {
        m: np.array([p if p is not None else [np.nan] * 3 for p in df["pred"]], dtype=float) for m, df in preds.items()
    }
    comp = RunComparer(per_item_scores(arrays, gold, items), ins, n_worst=2)
    comp.a.value, comp.b.value = "zero_shot", "shala"
    worst = comp.worst()
    assert worst["id"].tolist()[0] == "b"  # zero-shot one-hot on the wrong class
    ins.split.value = "train"
    comp.worst_box.children[0].click()
    assert ins.current_id == "b" and ins.split.value == ALL
