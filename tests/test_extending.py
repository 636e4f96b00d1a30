"""Adding a method or a metric touches one place: its registry entry (README "Extending")."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib.colors as mcolors
import numpy as np
import pytest
import seaborn as sns

from shala_lib.data.specs import CHAOSNLI
from shala_lib.evaluation.analysis import grouped_metrics, per_item_scores, plot_by_level
from shala_lib.evaluation.tables import metrics_rows, table1
from shala_lib.scoring.methods import Method, register_method, trained_methods, unregister_method
from shala_lib.scoring.metrics import Metric, evaluate, register_metric, unregister_metric
from shala_lib.scoring.rewards import make_reward_func, shala_reward
from shala_lib.training.config import ExperimentConfig
from tests.fixtures import six_items

PINK = "#e377c2"
ROOT = Path(__file__).resolve().parents[1]


def _config(overrides: list[str]) -> ExperimentConfig:
    return ExperimentConfig.from_yaml(ROOT / "configs" / "chaosnli_smollm2.yaml").with_overrides(overrides)


def hellinger(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return np.sqrt(0.5 * ((np.sqrt(p) - np.sqrt(q)) ** 2).sum(axis=1))


@pytest.fixture
def registered():
    method = register_method(Method("half_shala", "Half SHALA", PINK, reward=lambda p, q: 0.5 * shala_reward(p, q)))
    metric = register_metric(Metric("hel", "Hellinger", False, per_item=hellinger, in_table=True, in_figure=True))
    yield method, metric
    unregister_method("half_shala")
    unregister_metric("hel")


def _data():
    items, gold = six_items()
    return items, gold, {"zero_shot": np.tile([1.0, 0, 0], (6, 1)), "half_shala": gold.copy()}


def test_a_registered_method_and_metric_reach_table1_figure2_and_training(registered):
    items, gold, preds = _data()
    # evaluate: the new metric by hand; zero-shot (one-hot entailment) on item a is exact, on b maximal
    res = evaluate(preds["zero_shot"], gold, CHAOSNLI.classes)
    assert res["hel"] == pytest.approx(float(np.mean(hellinger(preds["zero_shot"], gold))))
    assert hellinger(preds["zero_shot"][:2], gold[:2]) == pytest.approx([0.0, 1.0])
    # Table 1: a column named by the metric's label, a row named by the method's label, ranked by direction
    t1 = table1(metrics_rows(preds, gold, CHAOSNLI.classes)).set_index("Method")
    assert list(t1.columns[:6]) == ["JSD", "BC", "Acc", "F1", "W-F1", "Hellinger"]
    assert t1.loc["Half SHALA", "Hellinger"].startswith("**0.000")  # best: lower is better
    assert t1.loc["Zero-shot", "Hellinger"] == f"<u>{res['hel']:.3f}</u>"  # second of two
    # Figure 2: a fifth panel for the metric; the method drawn in its colour
    scores = per_item_scores(preds, gold, items)
    assert "hel" in scores.columns
    grouped = grouped_metrics(preds, gold, CHAOSNLI.classes, items["ambiguity_level"], ["low", "medium", "high"])
    fig = plot_by_level(scores, grouped, ["low", "medium", "high"])
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [
        "JSD (lower is better)",
        "BC (higher is better)",
        "Accuracy",
        "Macro F1",
        "Hellinger (lower is better)",
    ]
    faces = {mcolors.to_hex(p.get_facecolor()) for p in fig.axes[4].patches}
    assert mcolors.to_hex(sns.desaturate(PINK, 0.75)) in faces  # seaborn's boxes: the colour at saturation 0.75
    assert [mcolors.to_hex(line.get_color()) for line in fig.axes[2].lines if line.get_marker() == "o"] == [
        "#7f7f7f",
        PINK,
    ]  # the accuracy lines: zero-shot's grey, the new method's pink
    assert "Half SHALA" in [t.get_text() for t in fig.legends[0].get_texts()]
    # training: the config accepts it and the reward function is its reward
    assert "half_shala" in trained_methods()
    assert _config(["method=half_shala"]).method == "half_shala"
    reward = make_reward_func("half_shala", CHAOSNLI)
    text = '{"entailment": 0.2, "neutral": 0.6, "contradiction": 0.2}'
    got = reward(completions=[text], target=[[0.2, 0.6, 0.2]])
    assert got == pytest.approx(0.5 * shala_reward(np.array([[0.2, 0.6, 0.2]]), np.array([[0.2, 0.6, 0.2]])))


def test_unregistered_is_gone_and_duplicates_are_refused(registered):
    with pytest.raises(ValueError, match="already registered"):
        register_method(Method("shala", "x", "#000000"))
    with pytest.raises(ValueError, match="already registered"):
        register_metric(Metric("jsd", "x", False))
    unregister_method("half_shala")
    with pytest.raises(ValueError, match="method must be one of"):
        _config(["method=half_shala"])


def test_plugins_reach_other_processes(tmp_path):
    """A training subprocess knows a method registered by a plugin module named in SHALA_PLUGINS."""
    (tmp_path / "my_methods.py").write_text(
        textwrap.dedent(
            """
            from shala_lib.scoring.methods import Method, register_method
            from shala_lib.scoring.rewards import majority_reward
            register_method(Method("mls_copy", "MLS copy", "#000000", reward=majority_reward))
            """
        )
    )
    env = {**os.environ, "SHALA_PLUGINS": "my_methods", "PYTHONPATH": str(tmp_path)}
    code = "from shala_lib.scoring.methods import trained_methods; print(trained_methods())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "('mls', 'shala_no_ambi', 'shala', 'mls_copy')"
    bad = subprocess.run(
        [sys.executable, "-c", code], env={**env, "SHALA_PLUGINS": "no_such_module"}, capture_output=True, text=True
    )
    assert bad.returncode != 0 and "SHALA_PLUGINS: cannot import plugin module 'no_such_module'" in bad.stderr
