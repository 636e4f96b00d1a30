"""The README's main job, end to end: `reproduce --profile smoke` (notebooks 01-06, the embedded
SmolLM2 model, real ChaosNLI) into a temporary folder. Checks that every table and figure the
profile promises exists and is non-trivial, that figures have their panels, and that the tables'
numbers agree with a recomputation from the prediction files by scipy/scikit-learn."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import f1_score

from shala_lib.data.loading import load
from shala_lib.pipeline.runner import NOTEBOOKS, Dirs, run_profile
from shala_lib.viz.plots import figure_panels

D, P = "chaosnli", "smoke"
TABLES = {  # name -> extensions
    **{f"{D}_stats_by_{k}": ("csv", "md", "tex") for k in ("majority", "ambiguity", "split")},
    f"zero_shot_{D}_test": ("csv", "md", "tex"),
    f"grpo_{D}_{P}_test": ("csv", "md", "tex"),
    f"table1_{D}_{P}": ("md", "tex"),
    f"table1_{D}_{P}_values": ("csv",),
    f"table1_{D}_{P}_bootstrap_ci": ("csv", "md", "tex"),
    f"table1_{D}_{P}_vs_paper": ("csv", "md", "tex"),
    f"table2_{D}_{P}": ("csv", "md", "tex"),
    **{f"{D}_{P}_{k}": ("csv", "md", "tex") for k in ("metrics_by_ambiguity", "metrics_by_class", "degradation_tests")},
    **{f"{D}_{P}_reasoning_{k}": ("csv", "md", "tex") for k in ("examples", "multiple_interpretations", "paper_items")},
}
FIGURES = {
    f"fig_{D}_ambiguity_distribution": ["ChaosNLI: annotator disagreement", "items per ambiguity level and split"],
    f"fig_training_curves_{D}_{P}": ["reward (mean)", "reward std", "unparsable fraction", "zero-variance groups"],
    f"fig2_{D}_ambiguity_{P}": ["JSD (lower is better)", "BC (higher is better)", "Accuracy", "Macro F1"],
    f"fig3_{D}_per_class_{P}": ["JSD", "BC", "Accuracy", "F1 of the class"],
}
METHODS = ("zero_shot", "mls", "shala_no_ambi", "shala")


def _recompute(pred_files: dict[str, Path], gold: pd.DataFrame, subset: str | None = None) -> pd.DataFrame:
    """JSD (base 2), BC, accuracy, macro F1 on the items every method predicted (of one subset when
    given); unparsable = uniform."""
    preds = {m: pd.read_json(f, lines=True).drop_duplicates("id").set_index("id") for m, f in pred_files.items()}
    ids = sorted(set.intersection(*(set(p.index) for p in preds.values())))
    if subset is not None:
        ids = [i for i in ids if gold.loc[i, "subset"] == subset]
    g = np.stack(gold.loc[ids, "dist"].to_numpy()).astype(float)
    rows = {}
    for m, p in preds.items():
        q = np.stack([np.asarray(v, float) if isinstance(v, list) else np.full(3, 1 / 3) for v in p.loc[ids, "pred"]])
        q = q / q.sum(axis=1, keepdims=True)
        y, yhat = g.argmax(axis=1), q.argmax(axis=1)
        rows[m] = {
            "n": len(ids),
            "jsd": float(np.mean([jensenshannon(a, b, base=2) for a, b in zip(q, g)])),
            "bc": float(np.sqrt(q * g).sum(axis=1).mean()),
            "acc": float((y == yhat).mean()),
            "f1": float(f1_score(y, yhat, labels=range(3), average="macro", zero_division=0)),  # all classes (App. E)
        }
    return pd.DataFrame(rows).T


@pytest.mark.slow
def test_smoke_profile_reproduces_every_table_and_figure(tmp_path: Path, shared_data: Path) -> None:
    dirs = Dirs(tmp_path / "runs", tmp_path / "results", tmp_path / "figures")
    written = run_profile(P, dirs=dirs, progress=False)
    assert [p.stem for p in written] == [n if n < "03" else f"{n}_{D}" for n in NOTEBOOKS]
    summary = json.loads((dirs.runs / "summary.json").read_text())
    assert len(summary["ran"]) == 6 and summary["skipped"] == []

    # every promised file, nothing else, each non-trivial
    expected = {f"{name}.{ext}" for name, exts in TABLES.items() for ext in exts}
    assert {p.name for p in dirs.results.iterdir()} == expected
    for name in expected:
        path = dirs.results / name
        if name.endswith(".csv"):
            df = pd.read_csv(path)
            assert len(df) >= 1 and not df.isna().all().any(), name
        elif name.endswith(".md"):
            assert "|" in (text := path.read_text()) and "---" in text, name
        else:
            assert "\\begin{tabular}" in path.read_text(), name
    assert {p.name for p in dirs.figures.iterdir()} == {f"{n}.{e}" for n in FIGURES for e in ("png", "pdf")}
    for name, panels in FIGURES.items():
        assert figure_panels(dirs.figures / f"{name}.png") == panels
        assert (dirs.figures / f"{name}.png").stat().st_size > 20_000
        pdf = (dirs.figures / f"{name}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF") and len(pdf) > 5_000

    # the tables' numbers, recomputed from the prediction files
    gold = load(D, data_dir=shared_data).set_index("id")
    files = {"zero_shot": dirs.runs / "zero_shot" / f"predictions_{D}_test_zero_shot_prefill.jsonl"}
    files |= {m: dirs.runs / "train" / f"{D}_smollm2_shala_{m}_{P}" / "predictions_test.jsonl" for m in METHODS[1:]}
    ours = _recompute(files, gold)
    blocks = pd.read_csv(dirs.results / f"table1_{D}_{P}_values.csv")
    # the paper's three blocks, each recomputed from the same predictions restricted to its subset
    assert blocks["block"].unique().tolist() == ["ChaosNLI", "ChaosNLI-M", "ChaosNLI-S"]
    for block, subset in (("ChaosNLI-M", "mnli"), ("ChaosNLI-S", "snli")):
        part = blocks[blocks["block"] == block].set_index("method")
        again = _recompute(files, gold, subset)
        for col in ("n", "jsd", "bc", "acc", "f1"):
            assert part.loc[list(METHODS), col].to_numpy() == pytest.approx(again[col].to_numpy().astype(float)), col
    assert blocks.groupby("block", sort=False)["n"].first().tolist()[0] == sum(
        blocks.groupby("block", sort=False)["n"].first().tolist()[1:]
    )
    md = (dirs.results / f"table1_{D}_{P}.md").read_text()
    assert all(f"| {b}" in md for b in ("ChaosNLI ", "ChaosNLI-M", "ChaosNLI-S"))
    t2 = pd.read_csv(dirs.results / f"table2_{D}_{P}.csv")
    assert set(t2.loc[t2["block"] == "ChaosNLI-M", "dataset"]) == {"chaosnli_mnli"}
    assert (t2.groupby("block")["origin"].apply(lambda o: (o == "published").sum()) > 0).all()
    values = blocks[blocks["block"] == "ChaosNLI"].set_index("method")
    assert values.index.tolist() == [*METHODS, "uniform", "constant_mean", "majority_oracle"]
    for col in ("n", "jsd", "bc", "acc", "f1"):
        assert values.loc[list(METHODS), col].to_numpy() == pytest.approx(ours[col].to_numpy().astype(float)), col
    test_ids = values.loc["zero_shot", "n"]
    g = np.stack(gold.loc[sorted(set(pd.read_json(files["shala"], lines=True)["id"])), "dist"].to_numpy())
    assert len(g) == test_ids
    assert values.loc["uniform", "jsd"] == pytest.approx(
        np.mean([jensenshannon(np.full(3, 1 / 3), d, base=2) for d in g])
    )
    assert values.loc["majority_oracle", "acc"] == 1.0
    # notebook 03's table: each checkpoint on all of its own test predictions
    grpo = pd.read_csv(dirs.results / f"grpo_{D}_{P}_test.csv").set_index("method")
    for m in METHODS[1:]:
        alone = _recompute({m: files[m]}, gold).loc[m]
        assert grpo.loc[m, "jsd"] == pytest.approx(alone["jsd"]) and grpo.loc[m, "n"] == alone["n"]
    # notebook 05: the per-level table's overall rows are Table 1's
    lv = pd.read_csv(dirs.results / f"{D}_{P}_metrics_by_ambiguity.csv")
    overall = lv[lv["group"] == "all"].set_index("method")["jsd"]
    assert overall.to_dict() == pytest.approx(values.loc[list(METHODS), "jsd"].to_dict())
    # notebook 05: the per-class F1 is each class's own F1, as in the paper
    cls = pd.read_csv(dirs.results / f"{D}_{P}_metrics_by_class.csv")
    cls = cls[cls["group"] != "all"]
    assert np.allclose(cls["class_f1"], 2 * cls["acc"] / (1 + cls["acc"]))
    # notebook 06: one example per level (human + every method), counts per method x level
    ex = pd.read_csv(dirs.results / f"{D}_{P}_reasoning_examples.csv")
    assert ex["ambiguity_level"].unique().tolist() == ["low", "medium", "high"]
    assert ex.groupby("id", sort=False)["method"].apply(list).tolist() == [["human", *METHODS]] * 3
