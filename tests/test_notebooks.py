"""End-to-end notebook runs under papermill (real ChaosNLI, tiny model) and notebook hygiene."""

import json
from pathlib import Path

import jupytext
import nbformat
import pandas as pd
import papermill as pm
import pytest
import yaml

from shala_lib.evaluation.zero_shot import predictions_path
from shala_lib.paths import project_root
from shala_lib.pipeline.profiles import ALL_NOTEBOOKS
from shala_lib.pipeline.runner import NOTEBOOKS, Dirs, NotebookFailed, load_profile, plan, run_profile
from shala_lib.scoring.methods import trained_methods
from shala_lib.training.config import ExperimentConfig

ROOT = project_root()


@pytest.mark.parametrize("name", ALL_NOTEBOOKS)
def test_notebooks_committed_without_outputs_and_paired(name):
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
    paired = jupytext.read(ROOT / "notebooks" / f"{name}.py")
    assert [c.source for c in nb.cells] == [c.source for c in paired.cells], "run: jupytext --sync notebooks/*.py"


def test_optional_absent_dataset_is_skipped_and_reported(tmp_path, shared_data):
    """A profile's optional dataset that is absent (licensed MSP-Podcast here) is skipped with the
    reason, in the output and in summary.json; notebook 01 says how to obtain it. (The whole smoke
    profile runs end to end in test_reproduce_smoke.py and, on definition files with a tiny model,
    in test_dataset_definitions.py.)"""
    params = tmp_path / "params"
    params.mkdir()
    out = tmp_path / "out"
    (params / "t.yaml").write_text(
        yaml.safe_dump(
            {
                "datasets": ["msp_podcast"],
                "optional_datasets": ["msp_podcast"],
                "common": {"DATA_DIR": str(shared_data)},
                "01_data_preparation": {"DATASETS": ["chaosnli", "msp_podcast"], "PROCESSED_DIR": str(out / "p")},
                "04_evaluation": {"per_dataset": True, "DATASET": "{dataset}"},
            }
        )
    )
    dirs = Dirs(out / "runs", out / "results", out / "figures")
    written = run_profile("t", ["01_data_preparation", "04_evaluation"], dirs, params, progress=False)
    assert [p.name for p in written] == ["01_data_preparation.ipynb"]
    summary = json.loads((out / "runs" / "summary.json").read_text())
    assert [r["notebook"] for r in summary["skipped"]] == ["04_evaluation_msp_podcast"]
    assert "msp_podcast.parquet" in summary["skipped"][0]["why"]
    nb1 = json.dumps(nbformat.read(written[0], as_version=4).cells[-3]["outputs"])
    assert "msp_podcast" in nb1 and "licensed" in nb1
    maj = pd.read_csv(out / "results" / "chaosnli_stats_by_majority.csv")
    assert maj.loc[maj["dataset"] == "ChaosNLI", "count"].tolist() == [1168, 1397, 548]


def test_runner_names_failing_notebook_and_cell(tmp_path):
    params = tmp_path / "params"
    params.mkdir()
    (params / "bad.yaml").write_text(yaml.safe_dump({"01_data_preparation": {"DATASETS": ["nope"]}}))
    with pytest.raises(NotebookFailed, match=r"01_data_preparation.ipynb failed in cell \d+ .*unknown dataset 'nope'"):
        run_profile("bad", ["01_data_preparation"], Dirs(tmp_path, tmp_path, tmp_path), params, progress=False)
    with pytest.raises(FileNotFoundError, match="known profiles"):
        run_profile("missing", params_dir=params)


@pytest.mark.parametrize("profile", ["smoke", "paper", "learning_check"])
def test_profile_parameters_are_the_notebooks_own(profile):
    """papermill only warns about a parameter a notebook does not declare: a typo would be ignored."""
    declared = {n: set(pm.inspect_notebook(str(ROOT / "notebooks" / f"{n}.ipynb"))) for n in ALL_NOTEBOOKS}
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
            assert (
                base.modality is None and "ONE_GPU_OVERRIDES" not in p and p["ONE_GPU_RECIPE"] == "full"
            )  # never LoRA silently
            assert (base.grpo["learning_rate"], base.grpo["num_generations"], base.grpo["beta"]) == (1e-6, 4, 0.0)
            # the paper's three methods: the registry's (notebooks take every method that trains)
            assert "METHODS" not in p and trained_methods() == ("mls", "shala_no_ambi", "shala")
            assert p["OUTPUT_DIR"] == "/R/train" and (p["RESULTS_DIR"], p["FIGURES_DIR"]) == ("/RES", "/FIG")
            for m in trained_methods():
                assert base.with_overrides([f"method={m}"]).method == m
            continue
        # 04-06 read what 02 and 03 wrote for the same dataset
        assert p["DATASET"] == d and p["RUN_PREFIX"] == f"{d}_shala_paper" and p["TRAIN_DIR"] == "/R/train"
        assert "METHODS" not in p
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
