"""End-to-end notebook runs under papermill (real ChaosNLI, tiny model) and notebook hygiene."""

import json
from pathlib import Path

import jupytext
import nbformat
import pandas as pd
import papermill as pm
import pytest
import yaml

from shala_lib.config import ExperimentConfig
from shala_lib.paths import project_root
from shala_lib.reproduce import NOTEBOOKS, Dirs, NotebookFailed, load_profile, plan, run_profile
from shala_lib.tiny import build_tiny_model
from shala_lib.zero_shot import predictions_path

ROOT = project_root()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_committed_without_outputs_and_paired(name):
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
    paired = jupytext.read(ROOT / "notebooks" / f"{name}.py")
    assert [c.source for c in nb.cells] == [c.source for c in paired.cells], "run: jupytext --sync notebooks/*.py"


@pytest.fixture(scope="module")
def tiny(shared_data, tmp_path_factory):
    from shala_lib.datasets import load

    df = load("chaosnli", data_dir=shared_data)
    path = tmp_path_factory.mktemp("nbtiny") / "model"
    return str(build_tiny_model(path, (df["premise"] + " " + df["hypothesis"]).tolist()[:300]))


@pytest.mark.slow
def test_smoke_profile_end_to_end_with_tiny_model(tmp_path, tiny, shared_data):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({"name": "tiny", "model": tiny, "prefill": True}))
    out = tmp_path / "out"
    params = tmp_path / "params"
    params.mkdir()
    # notebooks 04-06 read what 02 and 03 wrote; RESULTS_DIR / FIGURES_DIR come from the runner's Dirs
    trained = {
        "per_dataset": True,
        "DATASET": "{dataset}",
        "TRAIN_DIR": str(out / "train"),
        "RUN_PREFIX": "tiny",
        "METHODS": ["mls", "shala"],
        "DATA_DIR": str(shared_data),
    }
    zero_shot_file = str(out / "zs" / "predictions_{dataset}_test_zero_shot_prefill.jsonl")
    (params / "t.yaml").write_text(
        yaml.safe_dump(
            {
                "datasets": ["chaosnli", "msp_podcast"],  # msp_podcast is absent here: skipped, reported
                "01_data_preparation": {
                    "DATASETS": ["chaosnli", "msp_podcast"],
                    "DATA_DIR": str(shared_data),
                    "PROCESSED_DIR": str(out / "processed"),
                },
                "02_zero_shot_baselines": {
                    "MODEL": tiny,
                    "LIMIT": 4,
                    "BATCH_SIZE": 4,
                    "MAX_NEW_TOKENS": 8,
                    "OUT_DIR": str(out / "zs"),
                },
                "03_grpo_training": {
                    "per_dataset": True,
                    "CONFIG": str(cfg),
                    "METHODS": ["shala", "mls"],
                    "OUTPUT_DIR": str(out / "train"),
                    "GPUS": 0,
                },
                "04_evaluation": {**trained, "ZERO_SHOT_FILE": zero_shot_file, "N_BOOT": 20},
                "05_ambiguity_analysis": {**trained, "ZERO_SHOT_FILE": zero_shot_file},
                "06_reasoning_inspection": {
                    **trained,
                    "ZERO_SHOT_MODEL": tiny,
                    "N_COUNT_ITEMS": 3,
                    "MAX_NEW_TOKENS": 12,
                    "OUT_DIR": str(out / "reasoning"),
                },
            }
        )
    )
    dirs = Dirs(out / "runs" / "t", out / "results", out / "figures")
    written = run_profile("t", dirs=dirs, params_dir=params, progress=False)
    assert [p.name for p in written] == [f"{n}{'_chaosnli' if n >= '03' else ''}.ipynb" for n in NOTEBOOKS]
    summary = json.loads((out / "runs" / "t" / "summary.json").read_text())
    assert [r["notebook"] for r in summary["ran"]] == [p.stem for p in written]
    assert [r["notebook"] for r in summary["skipped"]] == [f"{n}_msp_podcast" for n in NOTEBOOKS[2:]]
    assert all("msp_podcast_seed42.parquet" in r["why"] for r in summary["skipped"])
    res = out / "results"
    # notebook 01: exact ChaosNLI statistics; MSP-Podcast reported as missing, not dropped silently
    maj = pd.read_csv(res / "chaosnli_stats_by_majority.csv")
    assert maj.loc[maj["dataset"] == "ChaosNLI", "count"].tolist() == [1168, 1397, 548]
    assert pd.read_parquet(out / "processed" / "chaosnli_seed42.parquet").shape[0] == 3113
    nb1 = json.dumps(nbformat.read(written[0], as_version=4).cells[-3]["outputs"])
    assert "msp_podcast" in nb1 and "licensed" in nb1
    assert (out / "figures" / "fig_chaosnli_ambiguity_distribution.png").stat().st_size > 10_000
    # notebook 02: parse rates and baselines on the same 4 items
    zs = pd.read_csv(res / "zero_shot_chaosnli_test.csv").set_index("method")
    assert set(zs.index) == {"zero_shot[paper]", "zero_shot[prefill]", "uniform", "constant_mean", "majority_oracle"}
    assert (zs["n"] == 4).all() and zs.loc["majority_oracle", "acc"] == 1.0
    # notebook 03: both methods trained (CPU smoke overrides), curves and test metrics written
    grpo = pd.read_csv(res / "grpo_chaosnli_smoke_test.csv")
    assert grpo["method"].tolist() == ["shala", "mls"] and (grpo["n"] == 16).all()
    assert (out / "train" / "tiny_shala_smoke" / "checkpoint-2").is_dir()
    assert (out / "figures" / "fig_training_curves_chaosnli_smoke.png").stat().st_size > 10_000
    # notebook 04: Table 1 on the 4 items every method predicted, recomputable from the predictions
    blocks = pd.read_csv(res / "table1_chaosnli_smoke_values.csv")
    assert blocks["block"].unique().tolist()[0] == "ChaosNLI"  # then the subsets among the 4 items
    assert set(blocks["block"]) <= {"ChaosNLI", "ChaosNLI-M", "ChaosNLI-S"}
    values = blocks[blocks["block"] == "ChaosNLI"].set_index("method")
    assert values.index.tolist() == ["zero_shot", "mls", "shala", "uniform", "constant_mean", "majority_oracle"]
    assert (values["n"] == 4).all() and values.loc["uniform", "jsd"] == pytest.approx(zs.loc["uniform", "jsd"])
    assert values.loc["zero_shot", "jsd"] == pytest.approx(zs.loc["zero_shot[prefill]", "jsd"])
    assert (
        "(+" in (res / "table1_chaosnli_smoke.md").read_text() or "(-" in (res / "table1_chaosnli_smoke.md").read_text()
    )
    assert "\\textbf" in (res / "table1_chaosnli_smoke.tex").read_text()
    t2 = pd.read_csv(res / "table2_chaosnli_smoke.csv")
    assert {"published", "ours"} == set(t2["origin"])
    # notebook 05: figures and the per-level table agree with Table 1's overall row
    for fig in ("fig2_chaosnli_ambiguity_smoke.png", "fig3_chaosnli_per_class_smoke.png"):
        assert (out / "figures" / fig).stat().st_size > 10_000
    lv = pd.read_csv(res / "chaosnli_smoke_metrics_by_ambiguity.csv")
    overall = lv[lv["group"] == "all"].set_index("method")["jsd"]
    assert overall.to_dict() == pytest.approx(values.loc[["zero_shot", "mls", "shala"], "jsd"].to_dict())
    assert set(pd.read_csv(res / "chaosnli_smoke_degradation_tests.csv")["method"]) == {"Zero-shot", "MLS", "SHALA-LLM"}
    # notebook 06: one example per ambiguity level with human + 3 methods, and counts per method x level
    ex = pd.read_csv(res / "chaosnli_smoke_reasoning_examples.csv")
    assert ex["ambiguity_level"].unique().tolist() == ["low", "medium", "high"]
    assert ex.groupby("id")["method"].apply(list).tolist() == [["human", "zero_shot", "mls", "shala"]] * 3
    counts = pd.read_csv(res / "chaosnli_smoke_reasoning_multiple_interpretations.csv")
    assert len(counts) == 3 * 3 and (counts["n"] > 0).all()


def test_runner_names_failing_notebook_and_cell(tmp_path):
    params = tmp_path / "params"
    params.mkdir()
    (params / "bad.yaml").write_text(yaml.safe_dump({"01_data_preparation": {"DATASETS": ["nope"]}}))
    with pytest.raises(NotebookFailed, match=r"01_data_preparation.ipynb failed in cell \d+ .*unknown dataset 'nope'"):
        run_profile("bad", ["01_data_preparation"], Dirs(tmp_path, tmp_path, tmp_path), params, progress=False)
    with pytest.raises(FileNotFoundError, match="known profiles"):
        run_profile("missing", params_dir=params)


@pytest.mark.parametrize("profile", ["smoke", "paper"])
def test_profile_parameters_are_the_notebooks_own(profile):
    """papermill only warns about a parameter a notebook does not declare: a typo would be ignored."""
    declared = {n: set(pm.inspect_notebook(str(ROOT / "notebooks" / f"{n}.ipynb"))) for n in NOTEBOOKS}
    for job in plan(load_profile(profile), dirs=Dirs.default(profile)):
        assert set(job.params) <= declared[job.notebook], (job.label, set(job.params) - declared[job.notebook])


def test_paper_profile_runs_every_dataset_and_all_four_methods():
    jobs = plan(load_profile("paper"), dirs=Dirs(Path("/R"), Path("/RES"), Path("/FIG")))
    datasets = ["chaosnli", "goemotions", "msp_podcast"]
    assert [j.label for j in jobs] == ["01_data_preparation", "02_zero_shot_baselines"] + [
        f"{n}_{d}" for n in NOTEBOOKS[2:] for d in datasets
    ]
    zs = jobs[1].params
    assert zs["DATASETS"] == datasets and zs["OPTIONS"] == ["paper"] and zs["LIMIT"] is None
    assert zs["MODEL"] == "Qwen/Qwen2.5-Omni-7B" and zs.get("MODALITY") is None  # each dataset's own modality
    assert (zs["OUT_DIR"], zs["RESULTS_DIR"]) == ("/R/zero_shot", "/RES")
    assert jobs[0].params["PROCESSED_DIR"] == "/R/processed"
    for job in jobs[2:]:
        d, p = job.dataset, job.params
        if job.notebook == "03_grpo_training":
            base = ExperimentConfig.from_yaml(ROOT / p["CONFIG"]).with_overrides(p["OVERRIDES"])
            assert (base.dataset, base.name, base.model) == (d, f"{d}_shala_paper", "Qwen/Qwen2.5-Omni-7B")
            assert base.modality is None and p["ONE_GPU_OVERRIDES"] == ["lora=true"]
            assert (base.grpo["learning_rate"], base.grpo["num_generations"], base.grpo["beta"]) == (1e-6, 4, 0.0)
            assert sorted(p["METHODS"]) == ["mls", "shala", "shala_no_ambi"] and p["OUTPUT_DIR"] == "/R/train"
            assert (p["RESULTS_DIR"], p["FIGURES_DIR"]) == ("/RES", "/FIG")
            for m in p["METHODS"]:
                assert base.with_overrides([f"method={m}"]).method == m
            continue
        # 04-06 read what 02 and 03 wrote for the same dataset
        assert p["DATASET"] == d and p["RUN_PREFIX"] == f"{d}_shala_paper" and p["TRAIN_DIR"] == "/R/train"
        assert sorted(p["METHODS"]) == ["mls", "shala", "shala_no_ambi"]
        if "ZERO_SHOT_FILE" in p:
            assert Path(p["ZERO_SHOT_FILE"]) == predictions_path(zs["OUT_DIR"], d, "test", "paper")


def test_profile_validation(tmp_path):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({"04_evaluation": {"per_dataset": True}}))
    with pytest.raises(ValueError, match="no top-level datasets list"):
        load_profile("a", tmp_path)
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"datasets": ["x"], "04_evaluation": {"per_dataset": "yes"}}))
    with pytest.raises(ValueError, match="per_dataset must be true or false"):
        load_profile("b", tmp_path)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"04_evalution": {}}))
    with pytest.raises(ValueError, match=r"unknown top-level key\(s\) \['04_evalution'\]"):
        load_profile("c", tmp_path)
