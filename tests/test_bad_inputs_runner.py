"""Requests the reproduction runner must refuse before the first notebook runs: exit 2, a message naming
the bad value (or the profile file and key) and the valid choices, and nothing written: summary.json
and the results folder stay byte for byte as they were. No notebook is executed here except one fast
failing one (its summary, and the kernel's TCP warning being silenced)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
import yaml

from shala_lib.pipeline import runner
from shala_lib.pipeline.kernel import TCP_WARNING, TcpWarningFilter
from shala_lib.pipeline.runner import NOTEBOOKS, Dirs, NotebookFailed, main, run_profile

CHOICES = str(list(NOTEBOOKS))


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An output tree holding an earlier run's summary.json and results."""
    root = tmp_path / "out"
    (root / "runs").mkdir(parents=True)
    (root / "results").mkdir()
    (root / "figures").mkdir()
    (root / "runs" / "summary.json").write_text('{"profile": "smoke", "status": "done", "earlier": true}\n')
    (root / "results" / "table.csv").write_text("a,b\n1,2\n")
    return root


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _dirs_args(out: Path) -> list[str]:
    return [
        "--runs-dir",
        str(out / "runs"),
        "--results-dir",
        str(out / "results"),
        "--figures-dir",
        str(out / "figures"),
    ]


def _refused(argv: list[str], out: Path, capsys) -> str:
    """Run the command; assert exit 2 and nothing written; return the error message."""
    before = _snapshot(out.parent)
    assert main(["--no-progress", "--no-download", *argv]) == 2
    assert _snapshot(out.parent) == before
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    return err.removeprefix("error: ").strip()


def _profile(tmp_path: Path, text: str, name: str = "p") -> Path:
    params = tmp_path / "params"
    params.mkdir(exist_ok=True)
    (params / f"{name}.yaml").write_text(text)
    return params


# --- arguments ---------------------------------------------------------------------------------------
def test_unknown_only_notebook(out, capsys):
    msg = _refused(["--only", "nosuch", *_dirs_args(out)], out, capsys)
    assert msg == f"--only: unknown notebook(s) ['nosuch']; choose from {CHOICES}"


def test_unknown_only_among_known_ones(out, capsys):
    msg = _refused(["--only", "01_data_preparation", "04_evalution", *_dirs_args(out)], out, capsys)
    assert msg == f"--only: unknown notebook(s) ['04_evalution']; choose from {CHOICES}"


def test_only_a_notebook_the_profile_does_not_run(out, capsys):
    """The smoke profile runs notebooks 01-06; the learning check (07) is its own profile."""
    msg = _refused(["--only", "07_learning_check", *_dirs_args(out)], out, capsys)
    assert msg == f"--only: notebook(s) ['07_learning_check'] not in profile 'smoke'; choose from {CHOICES}"


def test_dataset_or_model_for_a_profile_that_takes_none(out, capsys):
    """The learning check trains its own generated probe and from-scratch models: --dataset and --model would
    be ignored, so they are refused before anything runs."""
    msg = _refused(["--profile", "learning_check", "--dataset", "chaosnli", *_dirs_args(out)], out, capsys)
    assert msg == "--dataset: profile 'learning_check' runs ['07_learning_check'], which take no dataset"
    msg = _refused(["--profile", "learning_check", "--model", "x", *_dirs_args(out)], out, capsys)
    assert msg == "--model: profile 'learning_check' runs ['07_learning_check'], which take no model"


def test_only_without_a_name(out, capsys):
    msg = _refused(["--only", *_dirs_args(out)], out, capsys)
    assert msg == f"--only: name at least one notebook; choose from {CHOICES}"


def test_unknown_profile(out, capsys):
    msg = _refused(["--profile", "smok", *_dirs_args(out)], out, capsys)
    path = runner.project_root() / "papermill_params" / "smok.yaml"
    assert msg == f"no profile 'smok' ({path} missing); known profiles: ['learning_check', 'paper', 'smoke']"


def test_unknown_dataset_name(out, capsys):
    msg = _refused(["--dataset", "chaosnlii", *_dirs_args(out)], out, capsys)
    assert msg.startswith("--dataset: unknown dataset 'chaosnlii'; registered: [")
    assert "'chaosnli'" in msg and "'goemotions'" in msg


def test_absent_definition_file(out, tmp_path, capsys):
    path = tmp_path / "mine.yaml"
    msg = _refused(["--dataset", str(path), *_dirs_args(out)], out, capsys)
    assert msg == f"--dataset: {str(path)!r}: no such definition file"


def test_runs_dir_is_a_file(out, capsys):
    args = _dirs_args(out)
    args[1] = str(out / "results" / "table.csv")
    msg = _refused(["--only", "01_data_preparation", *args], out, capsys)
    assert msg == (
        f"--runs-dir: {out / 'results' / 'table.csv'} exists and is not a folder; give a folder the runner can write to"
    )


def test_results_dir_below_a_file(out, capsys):
    args = _dirs_args(out)
    args[3] = str(out / "results" / "table.csv" / "sub")
    msg = _refused(args, out, capsys)
    assert msg == (
        f"--results-dir: {out / 'results' / 'table.csv'} is a file, so the folder "
        f"{out / 'results' / 'table.csv' / 'sub'} cannot be created; give a folder the runner can write to"
    )


def test_figures_dir_not_writable(out, capsys, monkeypatch):
    # the suite may run as root, for whom every folder is writable: the permission check itself is faked
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == out / "figures" else real(p, mode))
    msg = _refused(_dirs_args(out), out, capsys)
    assert msg == f"--figures-dir: {out / 'figures'} is not writable; give a folder the runner can write to"


# --- profiles ----------------------------------------------------------------------------------------
PROFILE_CASES = {
    "top_level_typo": ("datasets: [chaosnli]\ncomon: {}\n", "unknown top-level key(s) ['comon']; known: common, "),
    "notebook_parameter_typo": (
        "02_zero_shot_baselines:\n  LIMTI: 3\n",
        "02_zero_shot_baselines.LIMTI: not a parameter of notebooks/02_zero_shot_baselines.ipynb; it declares: "
        "BATCH_SIZE, DATASETS, ",
    ),
    "common_parameter_typo": (
        "common:\n  DATA_DIRR: x\n",
        "common.DATA_DIRR: no notebook this profile runs declares this parameter",
    ),
    "common_parameter_of_a_notebook_not_run": (
        "common:\n  REQUIRE_PASS: true\n",  # notebook 07's parameter; this profile runs 01-06
        "common.REQUIRE_PASS: no notebook this profile runs declares this parameter",
    ),
    "section_of_a_notebook_not_run": (
        "07_learning_check:\n  SEEDS: [0]\n",
        "07_learning_check: parameters for a notebook this profile does not run (it runs ['01_data_preparation', ",
    ),
    "per_dataset_not_bool": (
        "datasets: [chaosnli]\n04_evaluation:\n  per_dataset: 'yes'\n",
        "04_evaluation: per_dataset must be true or false, got 'yes'",
    ),
    "per_dataset_without_datasets": (
        "04_evaluation:\n  per_dataset: true\n",
        "04_evaluation.per_dataset: per_dataset: true but the profile has no top-level datasets list",
    ),
    "datasets_not_a_list": ("datasets: chaosnli\n", "datasets: must be a list, got 'chaosnli'"),
    "dataset_not_a_string": ("datasets: [chaosnli, 3]\n", "datasets.1: must be a string, got 3"),
    "unknown_dataset": ("datasets: [chaosnli, nosuch]\n", "datasets[1]: unknown dataset 'nosuch'; registered: ["),
    "optional_not_listed": (
        "datasets: [chaosnli]\noptional_datasets: [msp_podcast]\n",
        "optional_datasets[0]: 'msp_podcast' is not in datasets ['chaosnli']",
    ),
    "notebook_not_a_mapping": ("01_data_preparation: [1, 2]\n", "01_data_preparation: must be a mapping, got [1, 2]"),
    "common_not_a_mapping": ("common: [PROCESSED_DIR]\n", "common: must be a mapping, got ['PROCESSED_DIR']"),
    "not_a_mapping": ("- chaosnli\n", "must be a mapping of sections, got list"),
    "notebooks_empty": ("notebooks: []\n", "notebooks: name at least one notebook; choose from ['01_data_prep"),
    "notebooks_unknown": (
        "notebooks: [07_learning_check, 07_learnig_check]\n",
        "notebooks[1]: unknown notebook '07_learnig_check'; choose from ['01_data_preparation', ",
    ),
    "notebooks_twice": (
        "notebooks: [07_learning_check, 07_learning_check]\n",
        "notebooks: a notebook is named twice: ['07_learning_check', '07_learning_check']",
    ),
    "notebooks_not_a_list": ("notebooks: 07_learning_check\n", "notebooks: must be a list, got '07_learning_check'"),
    "extra_notebook_parameter_typo": (
        "notebooks: [07_learning_check]\n07_learning_check:\n  SEED: [0]\n",
        "07_learning_check.SEED: not a parameter of notebooks/07_learning_check.ipynb; it declares: CONFIG, ",
    ),
}


@pytest.mark.parametrize("case", sorted(PROFILE_CASES))
def test_invalid_profile(case, out, tmp_path, capsys):
    text, expected = PROFILE_CASES[case]
    params = _profile(tmp_path, text)
    msg = _refused(["--params-dir", str(params), "--profile", "p", *_dirs_args(out)], out, capsys)
    assert msg.startswith(f"{params / 'p.yaml'}: {expected}"), msg


def test_profile_with_a_duplicate_key(out, tmp_path, capsys):
    params = _profile(tmp_path, "datasets: [chaosnli]\ncommon: {}\ndatasets: [goemotions]\n")
    msg = _refused(["--params-dir", str(params), "--profile", "p", *_dirs_args(out)], out, capsys)
    assert msg == f"{params / 'p.yaml'}:3: not valid YAML: duplicate key 'datasets' (first on line 1)"


def test_profile_with_an_alias_bomb(out, tmp_path, capsys):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{b}: &{b} [{', '.join(['*' + a] * 10)}]\n" for a, b in zip("abcdef", "bcdefg")
    )
    params = _profile(tmp_path, bomb)
    msg = _refused(["--params-dir", str(params), "--profile", "p", *_dirs_args(out)], out, capsys)
    assert msg.startswith(f"{params / 'p.yaml'}:5: not valid YAML: YAML aliases here expand to more than 100,000")


def test_profile_with_plain_aliases_as_yaml_dump_writes_them(tmp_path):
    """yaml.safe_dump writes repeated values as an anchor and aliases: such a profile is read as usual."""
    datasets = ["chaosnli"]
    text = yaml.safe_dump({"datasets": datasets, "01_data_preparation": {"DATASETS": datasets}})
    assert "&id001" in text and "*id001" in text
    params = _profile(tmp_path, text)
    assert runner.load_profile("p", params)["01_data_preparation"]["DATASETS"] == ["chaosnli"]


def test_the_shipped_profiles_validate():
    for name in ("smoke", "paper"):
        prof = runner.load_profile(name)
        assert prof["datasets"] and prof["common"]["PROCESSED_DIR"] == "{runs}/processed"


# --- summary.json ------------------------------------------------------------------------------------
def test_summary_records_skipped_notebooks_without_running_any(out, tmp_path):
    params = _profile(
        tmp_path,
        yaml.safe_dump(
            {
                "datasets": ["chaosnli"],
                "common": {"PROCESSED_DIR": str(tmp_path / "nothing_prepared")},
                "04_evaluation": {"per_dataset": True, "DATASET": "{dataset}"},
            }
        ),
    )
    dirs = Dirs(out / "runs", out / "results", out / "figures")
    assert run_profile("p", ["04_evaluation"], dirs, params, progress=False, check_data=False) == []
    summary = json.loads((out / "runs" / "summary.json").read_text())
    why = (
        "chaosnli was not prepared by 01_data_preparation "
        f"(no {tmp_path / 'nothing_prepared' / 'chaosnli.parquet'}: its data files are absent, see notebook 01)"
    )
    env = summary.pop("environment")
    assert env["git"]["commit"] and env["packages"]["torch"] != "not installed"  # what it ran on
    assert summary == {
        "profile": "p",
        "label": "p",
        "device": "cpu",
        "status": "done",
        "notebooks": [{"notebook": "04_evaluation_chaosnli", "status": "skipped", "why": why}],
        "ran": [],
        "skipped": [{"notebook": "04_evaluation_chaosnli", "why": why}],
    }
    assert [p.name for p in (out / "runs").iterdir()] == ["summary.json"]  # no temporary file left


@pytest.mark.slow
def test_a_failed_notebook_is_recorded_and_the_tcp_warning_is_gone(out, tmp_path, capfd):
    """The one notebook run here: notebook 01 fails at once on an unknown dataset."""
    params = _profile(
        tmp_path,
        yaml.safe_dump(
            {
                "datasets": ["chaosnli"],
                "01_data_preparation": {"DATASETS": ["nope"], "PROCESSED_DIR": str(tmp_path / "p")},
                "04_evaluation": {"per_dataset": True, "DATASET": "{dataset}"},
            }
        ),
    )
    dirs = Dirs(out / "runs", out / "results", out / "figures")
    with pytest.raises(NotebookFailed, match=r"01_data_preparation.ipynb failed in cell \d+ .*unknown dataset 'nope'"):
        run_profile("p", ["01_data_preparation", "04_evaluation"], dirs, params, progress=False, check_data=False)
    captured = capfd.readouterr()
    assert TCP_WARNING not in captured.err + captured.out
    summary = json.loads((out / "runs" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["ran"] == []
    first, second = summary["notebooks"]
    assert first["notebook"] == "01_data_preparation" and first["status"] == "failed"
    assert "unknown dataset 'nope'" in first["error"] and first["output"] == str(
        out / "runs" / "01_data_preparation.ipynb"
    )
    assert second == {
        "notebook": "04_evaluation_chaosnli",
        "status": "skipped",
        "why": "not run: 01_data_preparation failed",
    }
    assert summary["skipped"] == [{"notebook": "04_evaluation_chaosnli", "why": "not run: 01_data_preparation failed"}]


def test_tcp_warning_filter_drops_only_that_line():
    keep = TcpWarningFilter().filter
    tcp = logging.LogRecord("IPKernelApp", logging.WARNING, "", 0, TCP_WARNING + ". All communication ...", (), None)
    other = logging.LogRecord("IPKernelApp", logging.WARNING, "", 0, "Could not import extension %s", ("x",), None)
    assert keep(tcp) is False and keep(other) is True


# --- a GPU profile without a GPU ---------------------------------------------------------------------
def test_paper_profile_without_a_gpu_stops_before_any_notebook(out, capsys, monkeypatch):
    monkeypatch.setattr("shala_lib.training.dispatch.gpu_count", lambda: 0)
    msg = _refused(["--profile", "paper", *_dirs_args(out)], out, capsys)
    assert msg.startswith("profile 'paper' needs a GPU (requires_gpu: true;")
    assert "--profile smoke" in msg and "--allow-cpu" in msg and "'paper_cpu'" in msg


def test_allow_cpu_labels_every_output_as_a_cpu_run(tmp_path, monkeypatch):
    """With --allow-cpu the paper profile runs, and every notebook that names outputs by PROFILE says
    paper_cpu; the summary says so too (checked up to the first notebook, which is made to fail fast)."""
    monkeypatch.setattr("shala_lib.training.dispatch.gpu_count", lambda: 0)
    prof = runner.load_profile("paper")
    assert prof["requires_gpu"] is True and runner.needs_gpu_refusal(prof, "paper", True, 0) is None
    assert runner.needs_gpu_refusal(prof, "paper", False, 1) is None  # a GPU: runs as the profile
    jobs = runner.label_cpu_run(runner.plan(prof, dirs=Dirs(tmp_path, tmp_path, tmp_path)), "paper_cpu")
    labelled = {j.label for j in jobs if j.params.get("PROFILE") == "paper_cpu"}
    assert {j.label for j in jobs if "PROFILE" in j.params} == labelled and len(labelled) == 12  # 03-06 x 3
    assert not any(j.params.get("PROFILE") == "paper" for j in jobs)
    assert runner.needs_gpu_refusal(runner.load_profile("smoke"), "smoke", False, 0) is None


@pytest.mark.parametrize("name", ["../papermill_params/smoke", "/abs/smoke", "a/b", ".."])
def test_profile_is_a_name_not_a_path(out, capsys, name):
    msg = _refused(["--profile", name, *_dirs_args(out)], out, capsys)
    assert msg.startswith(f"--profile: {name!r} is not a profile name")


def test_empty_profile_is_refused(out, tmp_path, capsys):
    params = _profile(tmp_path, "# empty\n")
    msg = _refused(["--params-dir", str(params), "--profile", "p", *_dirs_args(out)], out, capsys)
    assert (
        msg == f"{params / 'p.yaml'}: the profile is empty; copy papermill_params/smoke.yaml and change what you need"
    )
