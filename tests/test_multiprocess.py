"""GRPO training on two processes (torchrun, CPU, gloo), as the paper's 2-GPU runs are launched:
what fails only with world size > 1. Every completion is logged exactly once, the batch is 4
prompts x 4 rollouts per optimizer step summed over the processes, the final model is evaluated,
and a run killed after a checkpoint resumes to the same metrics as an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from shala_lib.generation.predictions import read_predictions

KILLER = Path(__file__).with_name("mp_train_killed.py")
STEPS, SAVE = 4, 2


def text_overrides(tiny: str, out: Path, run_name: str) -> list[str]:
    """`--set` overrides of configs/chaosnli_smollm2.yaml for 2 processes: 4 prompts x 4 rollouts per
    optimizer step (8 completions per process), STEPS steps, a checkpoint every SAVE steps."""
    return [
        f"model={tiny}",
        "device=cpu",
        "max_train_items=16",
        "prompts_per_step=4",
        "grpo.per_device_train_batch_size=8",  # 8 completions per process x 2 processes = 4 prompts x 4
        "grpo.max_completion_length=12",
        "grpo.learning_rate=1e-4",
        f"grpo.max_steps={STEPS}",
        f"grpo.save_steps={SAVE}",
        "max_eval_items=4",
        "eval_batch_size=4",
        "report_to=[]",
        f"output_dir={out}",
        f"name={run_name}",
    ]


def launch(cmd: list[str], env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run a multi-process launch (torchrun / accelerate launch) in its own session; a hang fails the
    test after `timeout` s, with the launcher and every worker killed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both workers: a hang must not outlive the test
        stdout, stderr = proc.communicate()
        pytest.fail(f"2-process training hung (killed after {timeout} s):\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def _torchrun(entry: list[str], run_name: str, tiny: str, out: Path, *extra: str, env: dict | None = None):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *entry]
    cmd += ["configs/chaosnli_smollm2.yaml", *extra, "--set", *text_overrides(tiny, out, run_name)]
    return launch(cmd, env)


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_processes_log_every_completion_once_evaluate_and_resume_after_a_kill(tiny, tmp_path):
    full = _torchrun(["-m", "shala_lib.train"], "full", tiny, tmp_path)
    assert full.returncode == 0, full.stderr[-3000:]
    run = tmp_path / "full"
    eff = yaml.safe_load((run / "effective_config.yaml").read_text())
    assert eff["world_size"] == 2
    assert eff["notes"]["prompts_per_optimizer_step"] == 4 and eff["notes"]["completions_per_optimizer_step"] == 16
    assert eff["grpo_effective"]["gradient_accumulation_steps"] == 1 and eff["notes"]["loss_type"] == "grpo"

    comps = pd.read_parquet(run / "completions.parquet")
    assert not list(run.glob("completions.rank*.parquet"))  # merged
    assert len(comps) == STEPS * 16 and sorted(comps["step"].unique()) == list(range(STEPS))
    assert comps.groupby(["step", "rank"]).size().eq(8).all()  # each process scored its own 8
    per_prompt = comps.groupby(["step", "id"]).size()
    assert per_prompt.eq(4).all() and len(per_prompt) == STEPS * 4  # 4 prompts x 4 rollouts, once each

    metrics = json.loads((run / "metrics_test.json").read_text())
    assert metrics["n"] == 4 and 0.0 <= metrics["jsd"] <= 1.0
    assert len(read_predictions(run / "predictions_test.jsonl")) == 4
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]

    # killed (SIGKILL of process 0) right after checkpoint 2, then resumed
    killed = _torchrun([str(KILLER)], "killed", tiny, tmp_path, env={"SHALA_TEST_KILL_AFTER_SAVE": str(SAVE)})
    assert killed.returncode != 0
    run2 = tmp_path / "killed"
    assert (run2 / "checkpoint-2").is_dir() and not (run2 / "final").exists()
    resumed = _torchrun(["-m", "shala_lib.train"], "killed", tiny, tmp_path, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    cols = ["loss", "reward", "reward_std", "grad_norm", "learning_rate", "completions/mean_length"]
    a = pd.read_csv(run / "metrics.csv").dropna(subset=["loss"]).set_index("step")[cols]
    b = pd.read_csv(run2 / "metrics.csv").dropna(subset=["loss"]).set_index("step")[cols]
    assert b.index.tolist() == list(range(1, STEPS + 1))
    assert a.loc[SAVE + 1 :].reward.abs().sum() > 0  # the compared steps had something to learn from
    pd.testing.assert_frame_equal(a, b, rtol=1e-5, atol=1e-7)
    comps2 = pd.read_parquet(run2 / "completions.parquet")
    assert len(comps2) == len(comps) and comps2["completion"].tolist() == comps["completion"].tolist()
    again = json.loads((run2 / "metrics_test.json").read_text())
    assert again.pop("class_std") == metrics.pop("class_std") and again == pytest.approx(metrics)
