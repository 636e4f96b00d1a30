"""The training command never runs silently wrong and never destroys a run (issue 21).

Configs and `--set` overrides are validated by a strict schema (types, bounds, no unknown key at any
level, `grpo` keys checked against TRL's GRPOConfig) and every error names the source (the file or
`--set`) and the key path. The training command checks the config, the data and the run folder before
anything is moved, created or deleted: an earlier run survives every bad invocation byte for byte, a
rerun refuses to start over it, and `--overwrite` moves it aside whole to `<name>.previous-N/`.
None of these tests trains a model: validation fails first (or the run is stopped right after the move).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml

from shala_lib.files import YamlFileError
from shala_lib.train import EXIT_INVALID, main
from shala_lib.training.config import ConfigError, ExperimentConfig, paper_grpo
from shala_lib.training.dispatch import effective_if_exists, training_command
from shala_lib.training.preflight import InputError
from shala_lib.training.run_dir import RunExistsError, plan_run_dir, prepare_run_dir

ROOT = Path(__file__).resolve().parents[1]


# --- configs and overrides ------------------------------------------------------------------------------
# (YAML text of the config file, the error it must raise: every message names the file and the key path)
BAD_FILES = {
    "negative_lr": ("grpo:\n  learning_rate: -1.0e-5\n", r"c\.yaml: grpo\.learning_rate must be > 0, got -1e-05"),
    "zero_prompts": ("prompts_per_step: 0\n", r"c\.yaml: prompts_per_step must be >= 1, got 0"),
    "truthy_lora": ("lora: maybe\n", r"c\.yaml: lora must be true or false, got 'maybe'"),
    "yes_string_prefill": ("prefill: 'yes'\n", r"c\.yaml: prefill must be true or false, got 'yes'"),
    "int_for_bool": ("structured_rollouts: 1\n", r"c\.yaml: structured_rollouts must be true or false, got 1"),
    "dev_split": (
        "eval_split: dev\n",
        r"c\.yaml: eval_split must be one of 'train', 'validation' or 'test', got 'dev'",
    ),
    "float_for_int": ("max_train_items: 2.5\n", r"c\.yaml: max_train_items must be an integer, got 2\.5"),
    "float_generations": ("grpo:\n  num_generations: 4.0\n", r"c\.yaml: grpo\.num_generations must be an integer"),
    "one_generation": ("grpo:\n  num_generations: 1\n", r"c\.yaml: grpo\.num_generations must be >= 2, got 1"),
    "zero_temperature": ("grpo:\n  temperature: 0\n", r"c\.yaml: grpo\.temperature must be > 0, got 0"),
    "negative_beta": ("grpo:\n  beta: -0.1\n", r"c\.yaml: grpo\.beta must be >= 0, got -0\.1"),
    "zero_epsilon": ("grpo:\n  epsilon: 0.0\n", r"c\.yaml: grpo\.epsilon must be > 0, got 0\.0"),
    "zero_batch": (
        "grpo:\n  per_device_train_batch_size: 0\n",
        r"c\.yaml: grpo\.per_device_train_batch_size must be >= 1",
    ),
    "zero_completion": ("grpo:\n  max_completion_length: 0\n", r"c\.yaml: grpo\.max_completion_length must be >= 1"),
    "float_max_steps": ("grpo:\n  max_steps: 2.5\n", r"c\.yaml: grpo\.max_steps must be an integer, got 2\.5"),
    "zero_max_steps": ("grpo:\n  max_steps: 0\n", r"c\.yaml: grpo\.max_steps must be >= 1 \(or -1"),
    "nan_lr": ("grpo:\n  learning_rate: .nan\n", r"c\.yaml: grpo\.learning_rate must be > 0, got nan"),
    "inf_temperature": ("grpo:\n  temperature: .inf\n", r"c\.yaml: grpo\.temperature must be a finite number, got inf"),
    "unknown_loss": ("grpo:\n  loss_type: gpro\n", r"c\.yaml: grpo\.loss_type must be one of 'grpo', 'dr_grpo'"),
    "nested_typo": (
        "grpo:\n  learnin_rate: 1.0e-5\n",
        r"c\.yaml: grpo\.learnin_rate is not a field of TRL's GRPOConfig \(did you mean 'learning_rate'\?\)",
    ),
    "top_level_typo": (
        "methd: mls\n",
        r"c\.yaml: unknown config key\(s\) \['methd'\] \('methd': did you mean 'method'\?\)",
    ),
    "grpo_not_mapping": ("grpo: 5\n", r"c\.yaml: grpo must be a mapping of GRPOConfig fields, got 5"),
    "grpo_output_dir": ("grpo:\n  output_dir: /tmp/elsewhere\n", r"c\.yaml: grpo\.output_dir: the run folder is"),
    "greedy_rollouts": (
        "grpo:\n  generation_kwargs: {do_sample: false}\n",
        r"c\.yaml: grpo\.generation_kwargs\.do_sample: greedy rollouts",
    ),
    "name_with_slash": ("name: a/b\n", r"c\.yaml: name must be a plain folder name .*got 'a/b'"),
    "name_dotdot": ("name: '..'\n", r"c\.yaml: name must be a plain folder name .*got '\.\.'"),
    "empty_output_dir": ("output_dir: ''\n", r"c\.yaml: output_dir must not be empty"),
    "bad_device": ("device: gpu\n", r"c\.yaml: device must match"),
    "lora_and_top_layers": ("lora: true\ntrain_top_layers: 2\n", r"c\.yaml: train_top_layers must be null with lora"),
    "not_a_mapping": ("- a\n- b\n", r"c\.yaml: expected a mapping of config keys at the top level, got list"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_config_file_names_file_and_key(tmp_path, case):
    text, message = BAD_FILES[case]
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig.from_yaml(path)


def test_yaml_aliases_and_duplicate_keys_are_refused_with_the_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: a\nseed: 1\nname: b\n")
    with pytest.raises(YamlFileError, match=r"c\.yaml:3: not valid YAML: duplicate key 'name' \(first on line 1\)"):
        ExperimentConfig.from_yaml(path)
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{b}: &{b} [{', '.join(['*' + a] * 10)}]\n" for a, b in zip("abcdef", "bcdefg")
    )
    path.write_text(bomb + "name: *g\n")
    with pytest.raises(YamlFileError, match=r"c\.yaml:5: not valid YAML: YAML aliases here expand to more than"):
        ExperimentConfig.from_yaml(path)


# (overrides, the error: the source is --set and the key path is named)
BAD_OVERRIDES = {
    "negative_lr": (["grpo.learning_rate=-1e-5"], r"^--set: grpo\.learning_rate must be > 0, got -1e-05$"),
    "zero_prompts": (["prompts_per_step=0"], r"^--set: prompts_per_step must be >= 1, got 0$"),
    "truthy_lora": (["lora=maybe"], r"^--set: lora must be true or false, got 'maybe'$"),
    "dev_split": (["eval_split=dev"], r"^--set: eval_split must be one of 'train', 'validation' or 'test', got 'dev'$"),
    "empty_name": (["name=''"], r"^--set: name must be a plain folder name .*got ''$"),
    "no_name": (["name="], r"^--set: name must be a string, got None$"),
    "parent_name": (["name=../x"], r"^--set: name must be a plain folder name .*got '\.\./x'$"),
    "dot_name": (["name=."], r"^--set: name must be a plain folder name .*got '\.'$"),
    "unknown_key": (["methd=mls"], r"^--set: unknown config key\(s\) \['methd'\] \('methd': did you mean 'method'\?\)"),
    "nested_typo": (["grpo.num_generation=4"], r"^--set: grpo\.num_generation is not a field of TRL's GRPOConfig"),
    "not_key_value": (["lora"], r"^--set: 'lora' must look like key=value"),
    "into_a_scalar": (["seed.x=1"], r"^--set: seed is not a mapping; cannot set seed\.x$"),
    "float_for_int": (["grpo.max_steps=2.5"], r"^--set: grpo\.max_steps must be an integer, got 2\.5$"),
    "zero_keep": (["keep_checkpoints=0"], r"^--set: keep_checkpoints must be >= 1, got 0$"),
    "tolerance": (["sum_tolerance=1.5"], r"^--set: sum_tolerance must be in \[0, 1\) \(or null: off\), got 1\.5$"),
    "method": (
        ["method=majority"],
        r"^--set: method must be one of \('mls', 'shala_no_ambi', 'shala'\), got 'majority'$",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_OVERRIDES))
def test_bad_override_names_set_and_key(case):
    overrides, message = BAD_OVERRIDES[case]
    base = ExperimentConfig.from_yaml(ROOT / "configs" / "chaosnli_smollm2.yaml")
    with pytest.raises(ConfigError, match=message):
        base.with_overrides(overrides)


def test_an_error_the_file_caused_names_the_file_even_after_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lora: true\n")
    cfg = ExperimentConfig.from_yaml(path)
    with pytest.raises(ConfigError, match=r"^--set: train_top_layers must be null with lora"):
        cfg.with_overrides(["train_top_layers=2"])
    # the override is valid on its own: the value that clashes is the file's, named with the override
    cfg = ExperimentConfig.from_yaml(path.with_name("c.yaml"))
    assert cfg.with_overrides(["seed=3"]).seed == 3 and cfg.source_of("lora") == str(path)
    assert cfg.with_overrides(["lora=false"]).source_of("lora") == "--set"


def test_valid_values_parse_exactly():
    base = ExperimentConfig.from_yaml(ROOT / "configs" / "chaosnli_smollm2.yaml")
    cfg = base.with_overrides(
        ["grpo.learning_rate=2e-5", "lora=true", "name=123", "report_to=[]", "subset=null", "eval_split=validation"]
    )
    assert (cfg.grpo["learning_rate"], cfg.lora, cfg.name, cfg.report_to) == (2e-5, True, "123", [])
    assert (cfg.subset, cfg.eval_split, cfg.run_dir) == (None, "validation", Path("runs/train/123"))
    assert base.grpo["learning_rate"] == 1e-5 and base.grpo["num_train_epochs"] == 1.0  # the file's
    # YAML 1.1 reads 1e-5 (no dot) as a string: in a number field it is that number
    assert ExperimentConfig.from_dict({"grpo": {"learning_rate": "1e-5"}}).grpo["learning_rate"] == 1e-5
    # keys of GRPOConfig the workbench does not type pass through as written
    assert ExperimentConfig.from_dict({"grpo": {"lr_scheduler_type": "cosine"}}).grpo["lr_scheduler_type"] == "cosine"
    assert base.with_overrides(["grpo.generation_kwargs.top_k=5"]).grpo["generation_kwargs"] == {"top_k": 5}


@pytest.mark.parametrize("path", ["configs/shala_paper.yaml", "configs/chaosnli_smollm2.yaml", None])
def test_round_trip_to_yaml_from_yaml_is_equal(tmp_path, path):
    if path is None:
        cfg = ExperimentConfig(
            name="x", method="mls", lora=True, sum_tolerance=0.01, grpo={**paper_grpo(), "max_steps": 3}
        )
    else:
        cfg = ExperimentConfig.from_yaml(ROOT / path).with_overrides(["subset=snli", "report_to=[]"])
    cfg.to_yaml(tmp_path / "c.yaml")
    back = ExperimentConfig.from_yaml(tmp_path / "c.yaml")
    assert back == cfg and back.to_yaml() == cfg.to_yaml()


# --- the training command: an earlier run survives every bad invocation ---------------------------------
def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _earlier_run(run: Path, checkpoint: bool = True) -> dict[str, str]:
    """A finished run's folder as training leaves it (checkpoint-2/, final/, metrics, predictions)."""
    if checkpoint:
        (run / "checkpoint-2").mkdir(parents=True)
        (run / "checkpoint-2" / "model.safetensors").write_bytes(bytes(range(256)) * 64)
        (run / "checkpoint-2" / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    (run / "final").mkdir(parents=True)
    (run / "final" / "model.safetensors").write_bytes(b"\x00\x01weights" * 100)
    (run / "metrics.csv").write_text("step,loss,reward\n1,0.5,0.1\n2,0.4,0.2\n")
    (run / "predictions_test.jsonl").write_text('{"id": "a", "raw_text": "{}"}\n')
    (run / "metrics_test.json").write_text(json.dumps({"n": 4, "jsd": 0.3}))
    (run / "experiment.yaml").write_text("name: earlier\n")
    return _hashes(run)


@pytest.fixture
def setup(tmp_path, tiny, shared_data, monkeypatch):
    """A config (tiny model, CPU, 1 step) and an earlier run under its name."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "runs"
    cfg = {
        "name": "earlier",
        "dataset": "chaosnli",
        "model": tiny,
        "prefill": True,
        "device": "cpu",
        "report_to": [],
        "prompts_per_step": 2,
        "max_train_items": 8,
        "max_eval_items": 4,
        "eval_batch_size": 4,
        "output_dir": str(out),
        "grpo": {"max_steps": 1, "max_completion_length": 8, "per_device_train_batch_size": 8},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    before = _earlier_run(out / "earlier")
    return path, out, before


def _unchanged(out: Path, before: dict[str, str]) -> None:
    assert _hashes(out / "earlier") == before
    assert sorted(p.name for p in out.iterdir()) == ["earlier"]  # nothing moved aside, nothing created


def _bad_class_dataset(folder: Path) -> Path:
    folder.mkdir()
    rows = [{"id": f"i{i}", "text": f"item {i}", "label": "zzz" if i == 5 else "ab"[i % 2]} for i in range(30)]
    (folder / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    definition = {
        "name": "badcls",
        "classes": ["a", "b"],
        "text_fields": ["text"],
        "data": {"path": "t.jsonl", "format": "long", "id": "id", "label": "label"},
        "prompt": {"target": "Text: {text}", "task": "Say how annotators label it.", "label_word": "label"},
    }
    (folder / "badcls.yaml").write_text(yaml.safe_dump(definition))
    return folder / "badcls.yaml"


# (extra arguments, the message on stderr); {tmp} is the test's folder
BOTH = r"--set \+ \S*c\.yaml: dataset='chaosnli', "  # the dataset from the file, the key at fault from --set
BAD_COMMANDS = {
    "rerun_refused": (
        [],
        r"runs/earlier: an earlier run is there \(checkpoint-2, final, metrics.csv, metrics_test.json",
    ),
    "rerun_with_subset_typo": (
        ["--set", "subset=nosuch"],
        BOTH + r"subset='nosuch': unknown ChaosNLI",
    ),
    "overwrite_with_subset_typo": (["--overwrite", "--set", "subset=nosuch"], BOTH + r"subset="),
    "resume_with_lr_typo": (["--resume", "--set", "grpo.learning_rate=-1"], r"--set: grpo\.learning_rate must be > 0"),
    "missing_data_file": (["--overwrite", "--set", "data_dir={tmp}/empty"], BOTH + r"data_dir="),
    "bad_class_in_data": (["--overwrite", "--set", "dataset={tmp}/def/badcls.yaml"], r"unknown class 'zzz'"),
    "truthy_lora": (["--overwrite", "--set", "lora=maybe"], r"--set: lora must be true or false, got 'maybe'"),
    "dev_split": (["--overwrite", "--set", "eval_split=dev"], r"--set: eval_split must be one of"),
    "empty_name": (["--overwrite", "--set", "output_dir=.", "name=''"], r"--set: name must be a plain folder name"),
    "parent_name": (["--overwrite", "--set", "name=../earlier"], r"--set: name must be a plain folder name"),
    "unknown_key": (["--overwrite", "--set", "methd=mls"], r"--set: unknown config key\(s\) \['methd'\]"),
    "nested_typo": (["--overwrite", "--set", "grpo.max_step=3"], r"--set: grpo\.max_step is not a field"),
    "missing_model": (["--overwrite", "--set", "model=./no_such_model"], r"--set: model: no such model folder"),
    "runs_folder_as_run": (["--overwrite", "--set", "output_dir=.", "name=runs"], r"^error: runs: not a run folder"),
    "eval_only_dev": (["--eval-only", "--set", "eval_split=dev"], r"--set: eval_split must be one of"),
    "eval_only_subset": (["--eval-only", "--set", "subset=nosuch"], BOTH + r"subset='nosuch'"),
    "eval_only_no_final": (["--eval-only", "--set", "name=other"], r"runs/other/final: no trained model to evaluate"),
    "missing_config": (["--config-file-missing"], r"nope\.yaml: no such file"),
}


@pytest.mark.parametrize("case", sorted(BAD_COMMANDS))
def test_bad_command_exits_2_and_keeps_the_earlier_run(setup, tmp_path, capsys, case):
    path, out, before = setup
    extra, message = BAD_COMMANDS[case]
    (tmp_path / "empty").mkdir()
    _bad_class_dataset(tmp_path / "def")
    config = str(path)
    if extra == ["--config-file-missing"]:
        config, extra = str(tmp_path / "nope.yaml"), []
    argv = [config, *(a.replace("{tmp}", str(tmp_path)) for a in extra)]
    assert main(argv) == EXIT_INVALID
    err = capsys.readouterr().err
    assert re.search(message, err, re.M), err
    assert re.search(r"^error: ", err, re.M) and "Traceback" not in err
    _unchanged(out, before)


def test_rerun_refusal_names_the_folder_and_the_three_choices(setup, capsys):
    path, out, before = setup
    assert main([str(path)]) == EXIT_INVALID
    err = capsys.readouterr().err
    assert f"{out / 'earlier'}: an earlier run is there" in err
    assert "--resume (continue from its last checkpoint)" in err
    assert "--overwrite (move it aside to earlier.previous-1/ and start again; nothing is deleted)" in err
    assert "another name (--set name=...)" in err
    _unchanged(out, before)


def test_resume_without_a_checkpoint_is_an_error_not_a_fresh_start(tmp_path, tiny, shared_data, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "runs"
    before = _earlier_run(out / "earlier", checkpoint=False)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"name": "earlier", "model": tiny, "device": "cpu", "output_dir": str(out)}))
    assert main([str(path), "--resume"]) == EXIT_INVALID
    assert f"{out / 'earlier'}: --resume, but the run folder holds no checkpoint-*" in capsys.readouterr().err
    assert main([str(path), "--resume", "--set", "name=fresh"]) == EXIT_INVALID
    assert "runs/fresh: --resume, but the run folder does not exist" in capsys.readouterr().err
    _unchanged(out, before)


def test_resume_and_overwrite_exclude_each_other(setup, capsys):
    path, out, before = setup
    with pytest.raises(SystemExit) as e:
        main([str(path), "--resume", "--overwrite"])
    assert e.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    _unchanged(out, before)


class _Stop(Exception):
    pass


def test_overwrite_moves_the_earlier_run_aside_intact(setup, monkeypatch):
    """`--overwrite` renames the earlier run to earlier.previous-1/ (byte for byte) and starts a new folder;
    a second one takes previous-2. Training is stopped right after the folder is prepared."""
    import shala_lib.training.run as run

    path, out, before = setup

    def stop(*args, **kwargs):
        raise _Stop

    monkeypatch.setattr(run, "CompletionLog", stop)
    with pytest.raises(_Stop):
        main([str(path), "--overwrite"])
    assert _hashes(out / "earlier.previous-1") == before
    assert sorted(p.name for p in (out / "earlier").iterdir()) == ["experiment.yaml"]
    assert ExperimentConfig.from_yaml(out / "earlier" / "experiment.yaml").name == "earlier"
    (out / "earlier" / "metrics.csv").write_text("step\n1\n")
    with pytest.raises(_Stop):
        main([str(path), "--overwrite"])
    assert _hashes(out / "earlier.previous-1") == before
    assert _hashes(out / "earlier.previous-2") == {
        "experiment.yaml": _hashes(out / "earlier.previous-2")["experiment.yaml"],
        "metrics.csv": hashlib.sha256(b"step\n1\n").hexdigest(),
    }
    assert sorted(p.name for p in out.iterdir()) == ["earlier", "earlier.previous-1", "earlier.previous-2"]


# --- the run-folder rules and the notebook's dispatch, without a model -----------------------------------
def test_plan_run_dir_decides_without_changing_anything(tmp_path):
    run = tmp_path / "r"
    assert plan_run_dir(run, "refuse").action == "fresh" and not run.exists()
    before = _earlier_run(run)
    with pytest.raises(RunExistsError, match=r"r: an earlier run is there"):
        plan_run_dir(run, "refuse")
    plan = plan_run_dir(run, "overwrite")
    assert (plan.action, plan.moved_to) == ("overwrite", tmp_path / "r.previous-1") and _hashes(run) == before
    resume = plan_run_dir(run, "resume")
    assert (resume.action, resume.checkpoint) == ("resume", run / "checkpoint-2")
    other = tmp_path / "o"
    (other / "train").mkdir(parents=True)
    (other / "notes.txt").write_text("mine")
    for mode in ("refuse", "overwrite"):  # a folder of other things (runs/ itself) is never a run's
        with pytest.raises(RunExistsError, match=r"o: not a run folder \(it holds notes\.txt, train\)"):
            plan_run_dir(other, mode)
    assert prepare_run_dir(plan) == tmp_path / "r.previous-1"
    assert _hashes(tmp_path / "r.previous-1") == before and list(run.iterdir()) == []
    (tmp_path / "f").write_text("x")
    with pytest.raises(RunExistsError, match=r"f: the run folder's path is a file"):
        plan_run_dir(tmp_path / "f", "overwrite")


def test_training_command_carries_if_exists(tmp_path):
    run = tmp_path / "r"
    cmd = training_command("c.yaml", ["seed=1"], gpus=0, if_exists="overwrite")
    assert cmd[-5:] == ["shala_lib.train", "c.yaml", "--overwrite", "--set", "seed=1"]
    assert training_command("c.yaml", gpus=0)[-1] == "c.yaml"  # refuse: no flag, the command refuses
    assert effective_if_exists("resume", run) == "refuse"  # nothing to resume: a new run starts
    assert "--resume" not in training_command("c.yaml", gpus=0, if_exists="resume", run_dir=run)
    _earlier_run(run)
    assert training_command("c.yaml", gpus=0, if_exists="resume", run_dir=run)[-1] == "--resume"
    assert training_command("c.yaml", gpus=0, resume=True)[-1] == "--resume"
    with pytest.raises(ValueError, match=r"if_exists must be one of \('refuse', 'overwrite', 'resume'\), got 'keep'"):
        training_command("c.yaml", gpus=0, if_exists="keep")


def _two_split_dataset(folder: Path) -> Path:
    """A definition whose split has two parts: train and validation, no test items."""
    folder.mkdir()
    rows = [{"id": f"i{i}", "text": f"item {i}", "label": "ab"[i % 2]} for i in range(30)]
    (folder / "g.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    definition = {
        "name": "twosplit",
        "classes": ["a", "b"],
        "text_fields": ["text"],
        "split": {"fractions": [0.8, 0.2]},
        "data": {"path": "g.jsonl", "format": "long", "id": "id", "label": "label"},
        "prompt": {"target": "Text: {text}", "task": "Say how annotators label it.", "label_word": "label"},
    }
    (folder / "twosplit.yaml").write_text(yaml.safe_dump(definition))
    return folder / "twosplit.yaml"


def test_input_checks_name_the_split_without_items(tmp_path, tiny, shared_data):
    """eval_split on a split with no items would score nothing (all-NaN metrics): refused up front."""
    from shala_lib.training.preflight import check_inputs

    definition = _two_split_dataset(tmp_path / "d")
    cfg = ExperimentConfig.from_dict({"model": tiny}).with_overrides([f"dataset={definition}"])
    with pytest.raises(
        InputError,
        match=r"^config: eval_split: split 'test' of '.*twosplit\.yaml' has no items "
        r"\(items per split: \{'train': 24, 'validation': 6, 'test': 0\}\); set eval_split to a split with items",
    ):
        check_inputs(cfg)
    inputs = check_inputs(cfg.with_overrides(["eval_split=validation"]))
    assert inputs.table["split"].value_counts().to_dict() == {"train": 24, "validation": 6}
    assert inputs.model_path == tiny and inputs.spec.classes == ("a", "b")
    snli = ExperimentConfig.from_dict({"model": tiny}).with_overrides(["subset=snli"])
    assert check_inputs(snli).table["subset"].unique().tolist() == ["snli"]
    with pytest.raises(InputError, match=r"^config: model: no such model folder '/no/such/model'$"):
        check_inputs(ExperimentConfig.from_dict({"model": "/no/such/model"}))


def test_empty_config_file_is_refused(tmp_path):
    from shala_lib.training.config import ConfigError, ExperimentConfig

    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: the config is empty"):
        ExperimentConfig.from_yaml(path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("grpo.generation_kwargs={do_sampel: false}", r"generation_kwargs.do_sampel: not a field .*'do_sample'"),
        ("grpo.generation_kwargs={do_sample: 'false'}", r"generation_kwargs.do_sample must be true or false"),
    ],
)
def test_generation_kwargs_are_checked(override, message):
    from shala_lib.training.config import ConfigError, ExperimentConfig

    cfg = ExperimentConfig.from_yaml("configs/chaosnli_smollm2.yaml")
    with pytest.raises(ConfigError, match=rf"^--set: .*{message}"):
        cfg.with_overrides([override])
    assert cfg.with_overrides(["grpo.generation_kwargs={top_k: 5}"]).grpo["generation_kwargs"] == {"top_k": 5}
