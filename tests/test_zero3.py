"""DeepSpeed ZeRO-3 on two CPU processes (`accelerate launch`, configs/accelerate_zero3_cpu.yaml, gloo), the
engine of the paper's 2-GPU runs: training finishes with every parameter partitioned over the processes
(checkpoints hold one ZeRO shard per process), every completion is logged exactly once, the final model is
evaluated after the engine is released (no hang, no gloo crash), a run killed after a checkpoint resumes to
bit-identical final weights, the weights guard stops both processes when one partition holds a NaN, and
`effective_config.yaml` says it was ZeRO-3. Text (the tiny causal LM) and speech + text (the tiny
Qwen2.5-Omni thinker on generated MSP-Podcast clips).

The first run compiles DeepSpeed's small CPU communication op (~90 s, cached in ~/.cache/torch_extensions)."""

from __future__ import annotations

import importlib.util
import json
import math
import socket
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from shala_lib.paths import project_root
from shala_lib.train import EXIT_NONFINITE
from shala_lib.training.config import ExperimentConfig
from tests.test_multiprocess import KILLER, SAVE, STEPS, launch, text_overrides

ACCELERATE_CONFIG = project_root() / "configs" / "accelerate_zero3_cpu.yaml"
DEEPSPEED_CONFIG = project_root() / "configs" / "deepspeed_zero3_cpu.json"


def _free_port() -> int:
    with socket.socket() as s:  # accelerate's default port (29500) may be taken by another launch
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _accelerate(entry: list[str], config: str, sets: list[str], *extra: str, env: dict | None = None):
    if importlib.util.find_spec("deepspeed") is None:  # a failure, not a skip: install.sh installs it
        pytest.fail("deepspeed is not installed: bash scripts/install.sh (DS_BUILD_OPS=0, requirements-gpu.txt)")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ACCELERATE_CONFIG)]
    cmd += ["--deepspeed_config_file", str(DEEPSPEED_CONFIG), "--main_process_port", str(_free_port())]
    cmd += [*entry, config, *extra, "--set", *sets]
    return launch(cmd, {"DS_ACCELERATOR": "cpu", "TOKENIZERS_PARALLELISM": "false", **(env or {})}, timeout=420)


def _check_engine(run: Path) -> None:
    """effective_config.yaml records ZeRO-3 on 2 processes (its GRPOConfig fields alone would not)."""
    eng = yaml.safe_load((run / "effective_config.yaml").read_text())["engine"]
    assert eng["distributed_type"] == "DEEPSPEED" and eng["world_size"] == 2 and eng["backend"] == "gloo"
    ds = eng["deepspeed"]
    assert ds["zero_stage"] == 3 and ds["zero3_init"] is True and ds["param_persistence_threshold"] == 0
    assert (ds["offload_optimizer_device"], ds["offload_param_device"]) == ("none", "none")
    assert ds["config_file"] == str(DEEPSPEED_CONFIG) and ds["optimizer"] == "adamw_torch"
    assert eng["precision"] == {"mixed_precision": "no", "bf16": False, "fp16": False, "weights_dtype": "float32"}


def _check_shards(ckpt: Path, n_params: int | None = None) -> None:
    """One ZeRO shard (model + optimizer states) per process; the two fp32 partitions of the trained
    parameters are equal halves (every parameter is partitioned: stage3_param_persistence_threshold 0), so
    with `n_params` (every parameter trained) each holds half of them, not a whole copy."""
    step = ckpt.name.split("-")[-1]
    held = []
    for rank in (0, 1):
        for kind in ("model", "optim"):
            assert (ckpt / f"global_step{step}" / f"zero_pp_rank_{rank}_mp_rank_00_{kind}_states.pt").is_file()
        optim = torch.load(
            ckpt / f"global_step{step}" / f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt",
            map_location="cpu",
            weights_only=False,
        )["optimizer_state_dict"]
        assert optim["zero_stage"] == 3 and optim["partition_count"] == 2
        held.append(sum(t.numel() for t in optim["fp32_flat_groups"]))
    assert held[0] == held[1] > 0, held
    if n_params is not None:
        assert n_params <= sum(held) < 0.6 * n_params * 2 and held[0] < 0.6 * n_params, (held, n_params)


def _n_params(folder: Path) -> int:
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def _check_completions(run: Path, steps: int, prompts: int, rollouts: int) -> pd.DataFrame:
    comps = pd.read_parquet(run / "completions.parquet")
    assert not list(run.glob("completions.rank*.parquet"))  # merged
    per_step = prompts * rollouts
    assert len(comps) == steps * per_step and sorted(comps["step"].unique()) == list(range(steps))
    assert comps.groupby(["step", "rank"]).size().eq(per_step // 2).all()  # each process scored its half
    per_prompt = comps.groupby(["step", "id"]).size()
    assert per_prompt.eq(rollouts).all() and len(per_prompt) == steps * prompts  # every rollout once
    return comps


@pytest.mark.slow
@pytest.mark.multiprocess
def test_zero3_text_two_processes_train_evaluate_resume_bit_identical_and_guard(tiny, tmp_path):
    full = _accelerate(
        ["-m", "shala_lib.train"], "configs/chaosnli_smollm2.yaml", text_overrides(tiny, tmp_path, "full")
    )
    assert full.returncode == 0, full.stderr[-3000:]
    run = tmp_path / "full"
    _check_engine(run)
    n_params = _n_params(run / "final")
    assert sorted(p.name for p in run.glob("checkpoint-*")) == [f"checkpoint-{SAVE}", f"checkpoint-{STEPS}"]
    for ckpt in run.glob("checkpoint-*"):
        _check_shards(ckpt, n_params)
    comps = _check_completions(run, STEPS, prompts=4, rollouts=4)  # 64 completions
    metrics = json.loads((run / "metrics_test.json").read_text())  # evaluated after training: no hang
    assert metrics["n"] == 4 and 0.0 <= metrics["jsd"] <= 1.0

    # SIGKILL of process 0 right after checkpoint SAVE, then --resume: the same final weights, bit for bit
    killed = _accelerate(
        [str(KILLER)],
        "configs/chaosnli_smollm2.yaml",
        text_overrides(tiny, tmp_path, "killed"),
        env={"SHALA_TEST_KILL_AFTER_SAVE": str(SAVE)},
    )
    assert killed.returncode != 0
    run2 = tmp_path / "killed"
    assert (run2 / f"checkpoint-{SAVE}").is_dir() and not (run2 / "final").exists()
    resumed = _accelerate(
        ["-m", "shala_lib.train"], "configs/chaosnli_smollm2.yaml", text_overrides(tiny, tmp_path, "killed"), "--resume"
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = _weights(run / "final"), _weights(run2 / "final")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    w0 = _weights(Path(tiny))
    assert any(not torch.equal(a[k], w0[k]) for k in a if k in w0)  # training moved the weights
    comps2 = _check_completions(run2, STEPS, prompts=4, rollouts=4)
    assert comps2["completion"].tolist() == comps["completion"].tolist()
    again = json.loads((run2 / "metrics_test.json").read_text())
    assert again == metrics

    # a NaN in process 1's own ZeRO-3 partition after step 1: the guard stops both processes there
    nan = _accelerate(
        [str(KILLER)],
        "configs/chaosnli_smollm2.yaml",
        [*text_overrides(tiny, tmp_path, "nan"), "grpo.max_steps=2"],
        env={"SHALA_TEST_NAN_AT_STEP": "1", "SHALA_TEST_NAN_RANK": "1"},
    )
    assert nan.returncode != 0
    assert "NAN-INJECTED rank=1 step=1 zero3_partition=True" in nan.stdout
    for rank in (0, 1):  # both stopped with the guard's code (neither crashed sampling, neither hung)
        assert f"EXIT rank={rank} code={EXIT_NONFINITE}" in nan.stdout, nan.stdout[-3000:] + nan.stderr[-3000:]
    assert nan.stderr.count("parameters = nan at step 1") == 2
    run3 = tmp_path / "nan"
    assert not (run3 / "final").exists() and not list(run3.glob("checkpoint-*"))
    assert pd.read_csv(run3 / "metrics.csv")["step"].max() == 1


@pytest.mark.slow
@pytest.mark.multiprocess
def test_zero3_speech_two_processes_train_and_evaluate(tiny_thinker, msp_speech, tmp_path):
    cfg = ExperimentConfig.from_dict(
        {
            "name": "msp_zero3",
            "dataset": "msp_podcast",
            "data_dir": str(msp_speech),
            "model": tiny_thinker,
            "output_dir": str(tmp_path / "runs"),
            "device": "cpu",
            "prompts_per_step": 4,
            "max_train_items": 8,
            "max_eval_items": 4,
            "eval_batch_size": 4,
            "report_to": [],
            "structured_rollouts": True,  # parsable rollouts: rewards differ within groups, so gradients flow
            "grpo": {
                "max_steps": 2,
                "num_generations": 2,
                "per_device_train_batch_size": 4,  # 4 per process x 2 = 4 prompts x 2 rollouts
                "max_completion_length": 40,
                "learning_rate": 1e-3,
                "save_steps": 1,
            },
        }
    )
    config = tmp_path / "msp_zero3.yaml"
    cfg.to_yaml(config)
    res = _accelerate(["-m", "shala_lib.train"], str(config), ["eval_batch_size=4"])
    run = cfg.run_dir
    eff = yaml.safe_load((run / "effective_config.yaml").read_text())
    assert eff["model"]["modality"] == "speech+text"
    _check_engine(run)
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    for ckpt in run.glob("checkpoint-*"):
        _check_shards(ckpt)  # the vision tower is frozen: not in the optimizer's partitions
    comps = _check_completions(run, 2, prompts=4, rollouts=2)
    assert comps["completion"].str.startswith("{").all()
    assert pd.read_csv(run / "metrics.csv")["grad_norm"].dropna().gt(0).any()  # the updates are real
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((run / "metrics_test.json").read_text())
    assert metrics["n"] == 4 and 0.0 <= metrics["jsd"] <= 1.0
    # final/ and the checkpoints' weights load back exactly (every thinker tensor: load_thinker is strict);
    # ZeRO-3's save had written 'thinker.model.thinker.audio_tower...' keys, and every tensor failed to load
    from shala_lib.generation.omni import load_thinker

    final = load_thinker(str(run / "final"), dtype=torch.float32).state_dict()
    last = load_thinker(str(run / "checkpoint-2"), dtype=torch.float32).state_dict()
    assert final.keys() == last.keys() and all(torch.equal(final[k], last[k]) for k in final)


def test_single_process_effective_config_says_no_deepspeed(tiny, tmp_path):
    """One plain process: the engine section says so (no DeepSpeed, world size 1, fp32 on CPU)."""
    from shala_lib.training.grpo_args import grpo_config
    from shala_lib.training.run_dir import write_effective_config

    cfg = ExperimentConfig.from_dict(
        {"name": "plain", "dataset": "chaosnli", "model": tiny, "output_dir": str(tmp_path)}
    )
    cfg.run_dir.mkdir(parents=True)
    args = grpo_config(cfg, on_cpu=True)
    assert str(args.device) == "cpu"  # sets up the arguments' (single-process) state
    eng = yaml.safe_load(write_effective_config(cfg, args).read_text())["engine"]
    assert eng["deepspeed"] is None and eng["distributed_type"] == "NO" and eng["world_size"] == 1
    assert eng["precision"] == {"mixed_precision": "no", "bf16": False, "fp16": False, "weights_dtype": "float32"}
