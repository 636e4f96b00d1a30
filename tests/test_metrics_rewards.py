import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import accuracy_score, f1_score

from shala_lib.data.specs import CHAOSNLI
from shala_lib.evaluation.reference import constant_mean, majority_oracle, reference_predictions, uniform
from shala_lib.evaluation.significance import bootstrap_ci, degradation_test, paired_test
from shala_lib.scoring.metrics import (
    bhattacharyya,
    evaluate,
    format_with_change,
    js_distance,
    kl_divergence,
    relative_change,
    total_variation,
)
from shala_lib.scoring.rewards import (
    majority_reward,
    make_reward_func,
    shala_no_ambi_reward,
    shala_reward,
)

P = np.array([0.5, 0.5, 0.0])
Q = np.array([0.0, 0.5, 0.5])


def test_hand_computed_three_class_case():
    # m = [.25, .5, .25]; KL(P||m) = .5 ln 2 = KL(Q||m); JS div = .5 ln 2 nats = 0.5 bits
    assert js_distance(P, Q) == pytest.approx(math.sqrt(0.5))
    assert js_distance(P, Q, base=math.e) == pytest.approx(math.sqrt(0.5 * math.log(2)))
    assert js_distance(P, Q) / js_distance(P, Q, base=math.e) == pytest.approx(1.2011224, rel=1e-6)
    assert bhattacharyya(P, Q) == pytest.approx(0.5)
    assert total_variation(P, Q) == pytest.approx(0.5)
    assert js_distance(P, P) == 0.0 and bhattacharyya(P, P) == pytest.approx(1.0)
    assert js_distance([1, 0, 0], [0, 1, 0]) == pytest.approx(1.0)
    # KL(Q || P) with P floored at 1e-15: 0.5 ln(0.5/0.5) + 0.5 ln(0.5/1e-15)
    assert kl_divergence(Q, P) == pytest.approx(0.5 * math.log(0.5 / 1e-15), rel=1e-6)


def test_rowwise_agrees_with_scipy():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(5) * 0.5, size=200)
    q = rng.dirichlet(np.ones(5) * 0.5, size=200)
    p[:10, 0] = 0
    p[:10] /= p[:10].sum(1, keepdims=True)
    for base in (2.0, math.e):
        ref = np.array([jensenshannon(a, b, base=base) for a, b in zip(p, q)])
        assert np.allclose(js_distance(p, q, base=base), ref, atol=1e-12)


def test_evaluate_hand_computed_and_sklearn():
    gold = np.array([[0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])
    pred = np.array([[1.0, 0.0, 0.0], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [np.nan] * 3])
    res = evaluate(pred, gold, CHAOSNLI.classes)
    # labels gold [0,1,2,0], pred [0,0,2,0(uniform->first)] -> acc 3/4
    assert res["acc"] == 0.75 and res["n_unparsable"] == 1 and res["n"] == 4 and res["parse_rate"] == 0.75
    # F1: class0 P=2/3 R=1 -> .8 ; class1 0 ; class2 1 -> macro .6, weighted (.8*2+0+1)/4 = .65
    assert res["f1"] == pytest.approx(0.6) and res["wf1"] == pytest.approx(0.65)
    ex = evaluate(pred, gold, CHAOSNLI.classes, unparsable="exclude")
    assert ex["n"] == 3 and ex["acc"] == pytest.approx(2 / 3) and ex["parse_rate"] == 0.75
    rng = np.random.default_rng(1)
    g = rng.dirichlet(np.ones(4), 500)
    p = rng.dirichlet(np.ones(4), 500)
    r = evaluate(p, g, list("abcd"))
    yt, yp = g.argmax(1), p.argmax(1)
    assert r["acc"] == pytest.approx(accuracy_score(yt, yp))
    assert r["f1"] == pytest.approx(f1_score(yt, yp, labels=range(4), average="macro", zero_division=0))
    assert r["wf1"] == pytest.approx(f1_score(yt, yp, average="weighted"))
    assert r["jsd"] == pytest.approx(np.mean([jensenshannon(a, b, base=2) for a, b in zip(p, g)]))


def test_macro_f1_averages_over_all_classes_as_app_e():
    """App. E: macro F1 = 1/|Y| sum over all classes. A group lacking a class (no gold item, never
    predicted) counts that class as 0; scikit-learn's default (`f1_present`) leaves it out.
    Gold labels [0, 0, 1, 1], predicted [0, 1, 1, 1], classes 0-2 (2 absent):
    F1_0 = 2*1/(2+1) = 2/3, F1_1 = 2*2/(2+3) = 4/5, F1_2 = 0 ->
    macro = (2/3 + 4/5 + 0) / 3 = 22/45; present labels only: (2/3 + 4/5) / 2 = 11/15."""
    from shala_lib.scoring.metrics import evaluate_by, f1_scores

    gold = np.eye(3)[[0, 0, 1, 1]] * 0.8 + 0.2 / 3
    pred = np.eye(3)[[0, 1, 1, 1]]
    res = evaluate(pred, gold, CHAOSNLI.classes)
    assert res["f1"] == pytest.approx(22 / 45) and res["f1_present"] == pytest.approx(11 / 15)
    yt, yp = gold.argmax(1), pred.argmax(1)
    assert res["f1"] == pytest.approx(f1_score(yt, yp, labels=[0, 1, 2], average="macro", zero_division=0))
    assert res["f1_present"] == pytest.approx(f1_score(yt, yp, average="macro"))
    assert res["wf1"] == pytest.approx((2 * 2 / 3 + 2 * 4 / 5) / 4)  # weighted by gold support: unchanged
    macro, _, per_class = f1_scores(yt, yp, 3)
    assert per_class.tolist() == pytest.approx([2 / 3, 4 / 5, 0.0]) and macro == pytest.approx(22 / 45)
    # per level too. low: gold [0, 0], predicted [0, 1] -> F1_0 = 2/3, F1_1 = 0, F1_2 = 0:
    # 2/9 over all classes, 1/3 over the two present; high: gold [1, 1] predicted right -> F1_1 = 1:
    # 1/3 over all classes, 1 over the one present (the paper's figures would show 1/3)
    levels = ["low", "low", "high", "high"]
    t = evaluate_by(pred, gold, CHAOSNLI.classes, levels, ["low", "high"]).set_index("group")
    assert t.loc["low", "f1"] == pytest.approx(2 / 9) and t.loc["low", "f1_present"] == pytest.approx(1 / 3)
    assert t.loc["high", "f1"] == pytest.approx(1 / 3) and t.loc["high", "f1_present"] == pytest.approx(1.0)


def test_metrics_beyond_the_paper_hand_computed():
    """LeWiDi's Manhattan distance, total variation, KL with its base; computed by `evaluate`, not
    Table 1 columns unless asked for."""
    from shala_lib.scoring.metrics import extra_metrics, manhattan, table_metrics

    p, q = np.array([0.7, 0.2, 0.1]), np.array([0.4, 0.4, 0.2])
    assert manhattan(p, q) == pytest.approx(0.3 + 0.2 + 0.1)
    assert total_variation(p, q) == pytest.approx(0.3)
    kl = 0.7 * math.log(0.7 / 0.4) + 0.2 * math.log(0.2 / 0.4) + 0.1 * math.log(0.1 / 0.2)
    assert kl_divergence(p, q) == pytest.approx(kl)  # nats
    assert kl_divergence(p, q, base=2) == pytest.approx(kl / math.log(2))  # bits
    res = evaluate(np.array([q]), np.array([p]), CHAOSNLI.classes)  # kl is KL(gold || pred)
    assert (res["manhattan"], res["tvd"], res["kl"]) == pytest.approx((0.6, 0.3, kl))
    assert table_metrics() == ("jsd", "bc", "acc", "f1", "wf1")
    assert {"manhattan", "tvd", "kl", "jsd_e", "f1_present"} <= set(extra_metrics())


def test_bad_metric_input_is_clear():
    with pytest.raises(ValueError, match="sum to 1"):
        js_distance([0.5, 0.6, 0.0], Q)
    with pytest.raises(ValueError, match="shape mismatch"):
        bhattacharyya([0.5, 0.5], Q)
    with pytest.raises(ValueError, match="non-negative"):
        js_distance([-0.5, 1.5, 0.0], Q)
    with pytest.raises(ValueError, match="expected 3 columns"):
        evaluate(np.ones((2, 2)) / 2, np.ones((2, 2)) / 2, CHAOSNLI.classes)


def test_relative_change_like_paper_table_1():
    assert relative_change(0.181, 0.375, "jsd") == pytest.approx(51.73, abs=0.01)
    assert format_with_change(0.181, 0.375, "jsd") == "0.181 (+51.7%)"
    assert format_with_change(0.477, 0.375, "jsd") == "0.477 (-27.2%)"
    assert format_with_change(0.966, 0.850, "bc") == "0.966 (+13.6%)"
    assert format_with_change(0.375, 0.375, "jsd") == "0.375"


def test_rewards_hand_computed():
    target = np.array([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])
    pred = np.array([[0.5, 0.5, 0.0], [np.nan, np.nan, np.nan]])
    h = math.log(2) / math.log(3)
    assert shala_reward(pred, target) == pytest.approx([h * (1 - math.sqrt(0.5)), 0.0])
    assert shala_no_ambi_reward(pred, target) == pytest.approx([1 - math.sqrt(0.5), 0.0])
    # majority of [0, .5, .5] is class 1 (ties to first) -> pred[1] = .5
    assert majority_reward(pred, target) == pytest.approx([0.5, 0.0])
    # unanimous item: H~ = 0 -> SHALA reward 0 even for a perfect answer
    assert shala_reward(np.array([[1.0, 0, 0]]), np.array([[1.0, 0, 0]])) == pytest.approx([0.0])


def test_trl_reward_function_standard_and_conversational():
    fn = make_reward_func("shala", CHAOSNLI, prefill='{"entailment": ')
    target = [[0.0, 0.5, 0.5]] * 3
    plain = ['0.5, "neutral": 0.5, "contradiction": 0.0}', "garbage", '0.0, "neutral": 0.5, "contradiction": 0.5}']
    conv = [[{"role": "assistant", "content": c}] for c in plain]
    logged = {}
    r1 = fn(
        prompts=["p"] * 3,
        completions=plain,
        completion_ids=[[1]] * 3,
        target=target,
        log_metric=lambda k, v: logged.__setitem__(k, v),
        log_extra=lambda k, v: logged.__setitem__(k, v),
    )
    r2 = fn(prompts=["p"] * 3, completions=conv, target=target)
    h = math.log(2) / math.log(3)
    assert r1 == pytest.approx([h * (1 - math.sqrt(0.5)), 0.0, h]) and r1 == pytest.approx(r2)
    assert logged["parse_status"] == ["ok", "invalid_values", "ok"]  # prefill + "garbage"
    assert logged["parse_fail_rate"] == pytest.approx(1 / 3)
    assert fn.__name__ == "shala_reward"
    with pytest.raises(KeyError, match="target"):
        fn(prompts=["p"], completions=["x"])


def test_entropy_weight_cancels_under_group_scaling():
    """TRL's advantage (r - mean_g) / (std_g + 1e-4): a per-prompt factor H~ cancels under 'group'
    scaling (only unanimous H~=0 items drop out), and reweights prompts under 'batch' scaling."""
    rng = np.random.default_rng(0)
    targets = rng.dirichlet(np.ones(3), size=8)
    preds = rng.dirichlet(np.ones(3), size=(8, 4))
    rep = np.repeat(targets, 4, axis=0)
    r_shala = shala_reward(preds.reshape(-1, 3), rep).reshape(8, 4)
    r_plain = shala_no_ambi_reward(preds.reshape(-1, 3), rep).reshape(8, 4)

    def group_adv(r):
        return (r - r.mean(1, keepdims=True)) / (r.std(1, ddof=1, keepdims=True) + 1e-4)

    def batch_adv(r):
        return (r - r.mean(1, keepdims=True)) / (r.std(ddof=1) + 1e-4)

    assert np.allclose(group_adv(r_shala), group_adv(r_plain), atol=5e-3)
    ratio = np.abs(batch_adv(r_shala)).mean(1) / np.abs(batch_adv(r_plain)).mean(1)
    from shala_lib.data.distributions import normalized_entropy

    h = normalized_entropy(targets)
    assert np.corrcoef(ratio, h)[0, 1] > 0.99  # under batch scaling the weight is H~ itself


def test_baselines(shared_data):
    from shala_lib.data.loading import load

    df = load("chaosnli", data_dir=shared_data)
    preds = reference_predictions(df)
    gold = np.asarray(df.loc[df["split"] == "test", "dist"].tolist())
    assert np.allclose(preds["uniform"], 1 / 3)
    assert np.allclose(preds["constant_mean"][0], np.asarray(df.loc[df["split"] == "train", "dist"].tolist()).mean(0))
    assert evaluate(preds["majority_oracle"], gold, CHAOSNLI.classes)["acc"] == 1.0
    # the notes' observation: a constant mean distribution is about the paper's zero-shot JSD (0.375)
    cm = evaluate(preds["constant_mean"], gold, CHAOSNLI.classes)["jsd"]
    assert 0.33 < cm < 0.42
    test = df[df["split"] == "test"]
    subset = test.iloc[[5, 2, 9]]
    sub = reference_predictions(df, items=subset)
    for name in preds:
        assert np.array_equal(sub[name], preds[name][[5, 2, 9]])
    assert uniform(2, 4).shape == (2, 4) and majority_oracle(np.array([[0.4, 0.4, 0.2]])).tolist() == [[1, 0, 0]]
    with pytest.raises(ValueError):
        constant_mean(df.iloc[:0], 3)


def test_bootstrap_paired_and_degradation():
    rng = np.random.default_rng(0)
    g = rng.dirichlet(np.ones(3), 200)
    ci = bootstrap_ci(g, g, CHAOSNLI.classes, n_boot=50).set_index("metric")
    assert ci.loc["jsd", "value"] == 0 and ci.loc["acc", "ci_low"] == 1.0
    p = rng.dirichlet(np.ones(3), 200)
    ci = bootstrap_ci(p, g, CHAOSNLI.classes, n_boot=200, seed=1).set_index("metric")
    assert ci.loc["jsd", "ci_low"] < ci.loc["jsd", "value"] < ci.loc["jsd", "ci_high"]
    a = rng.normal(0.3, 0.05, 300)
    res = paired_test(a, a + 0.02)
    assert res["mean_diff"] == pytest.approx(-0.02) and res["p_wilcoxon"] < 1e-10
    assert paired_test(a, a)["p_wilcoxon"] == 1.0
    levels = np.array(["low", "medium", "high"] * 100)
    flat = degradation_test(rng.normal(0.3, 0.05, 300), levels, ["low", "medium", "high"])
    assert flat["p_kruskal"] > 0.01
    trend = degradation_test(
        np.where(levels == "high", 0.6, 0.2) + rng.normal(0, 0.01, 300), levels, ["low", "medium", "high"]
    )
    assert trend["p_kruskal"] < 1e-10 and trend["spearman_rho"] > 0.5


def test_evaluate_by_groups_and_table1_relative_change():
    import pandas as pd

    from shala_lib.evaluation.tables import table1
    from shala_lib.scoring.metrics import evaluate_by

    gold = np.array([[0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])
    pred = np.array([[1.0, 0.0, 0.0], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [np.nan] * 3])
    levels = ["low", "high", "high", "low"]
    t = evaluate_by(pred, gold, CHAOSNLI.classes, levels, order=["low", "medium", "high"]).set_index("group")
    assert t.index.tolist() == ["all", "low", "high"]  # 'medium' has no items
    assert t.loc["low", "n"] == 2 and t.loc["low", "n_unparsable"] == 1 and t.loc["low", "acc"] == 1.0
    assert t.loc["high", "acc"] == 0.5
    assert t.loc["low", "jsd"] == pytest.approx(
        np.mean([js_distance(pred[0], gold[0]), js_distance(np.ones(3) / 3, gold[3])])
    )
    tab = pd.DataFrame(
        {
            "method": ["zero_shot", "shala"],
            "jsd": [0.375, 0.181],
            "bc": [0.850, 0.966],
            "acc": [0.603, 0.768],
            "f1": [0.473, 0.758],
            "wf1": [0.547, 0.767],
            "n_unparsable": [3, 0],
        }
    )
    rel = table1(tab, "zero_shot", style="plain").set_index("Method")  # rows named by the method registry
    assert rel.loc["SHALA-LLM", "JSD"] == "0.181 (+51.7%)" and rel.loc["SHALA-LLM", "F1"] == "0.758 (+60.3%)"
    assert rel.loc["Zero-shot", "JSD"] == "0.375" and rel.loc["Zero-shot", "Unparsable"] == 3
    with pytest.raises(ValueError, match="reference method 'mls'"):
        table1(tab, "mls")
    with pytest.raises(ValueError, match="3 group labels for 4 items"):
        evaluate_by(pred, gold, CHAOSNLI.classes, levels[:3])


def test_strict_sum_scores_off_simplex_answers_zero():
    """The prompt demands probabilities summing to exactly 1.0; the lenient parser renormalises
    `{1, 1, 1}` to uniform, an easy input-independent attractor. With a tolerance it scores 0."""
    from shala_lib.scoring.rewards import make_reward_func, shala_no_ambi_reward

    texts = [
        '{"entailment": 1, "neutral": 1, "contradiction": 1}',
        '{"entailment": 0.5, "neutral": 0.3, "contradiction": 0.2}',
        '{"entailment": 0.5, "neutral": 0.3, "contradiction": 0.205}',
        "nonsense",
    ]
    target = [[0.4, 0.4, 0.2]] * 4
    logged = {}
    lenient = make_reward_func("shala_no_ambi", CHAOSNLI)(completions=texts, target=target)
    strict = make_reward_func("shala_no_ambi", CHAOSNLI, sum_tolerance=0.01)(
        completions=texts, target=target, log_extra=lambda k, v: logged.setdefault(k, v)
    )
    uniform = shala_no_ambi_reward(np.full((1, 3), 1 / 3), np.array([[0.4, 0.4, 0.2]]))[0]
    assert lenient[0] == pytest.approx(uniform) and strict[0] == 0.0
    assert strict[1] == pytest.approx(lenient[1]) and strict[2] == pytest.approx(lenient[2])  # within 0.01
    assert strict[3] == lenient[3] == 0.0
    assert logged["parse_status"] == ["off_simplex", "ok", "renormalized", "no_json"]
    with pytest.raises(ValueError, match="sum_tolerance must be in"):
        from shala_lib.training.config import ExperimentConfig

        ExperimentConfig.from_dict({"sum_tolerance": 1.5})
