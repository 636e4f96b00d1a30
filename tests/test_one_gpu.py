"""Issue 22: one GPU keeps the paper's method (full fine-tuning, ZeRO-3 CPU offload, lr 1e-6), LoRA only when
asked; DeepSpeed's ZeRO-3 memory estimate, reproduced without DeepSpeed. CPU dry runs, no training."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from shala_lib.training import memory
from shala_lib.training.dispatch import ACCELERATE_ZERO3, ACCELERATE_ZERO3_OFFLOAD, MemoryRefusal, plan_training
from shala_lib.training.memory import QWEN25_OMNI_7B_THINKER, ModelSize, estimate, resolve_recipe

ROOT = Path(__file__).resolve().parents[1]
PAPER = str(ROOT / "configs/shala_paper.yaml")
CPU = ["device=cpu", "grpo.max_steps=2", "report_to=[]"]
EMB = 152_064 * 3_584


def test_estimator_reproduces_issue_22_numbers():
    """DeepSpeed's formula on ~8.3B parameters, largest layer the embedding: the issue's GB (= GiB)."""
    s = ModelSize(8_300_000_000, EMB)
    r = {(n, rec): tuple(round(x, 1) for x in estimate(s, rec, n)) for n in (1, 2) for rec in memory.RECIPES}
    assert round(r[1, "zero3"][0]) == 141  # no offload: does not fit a 141 GB GPU
    assert r[1, "zero3_offload_optimizer"] == (17.5, 185.5)  # 17.5 GPU + 186 CPU
    assert (round(r[1, "zero3_offload_all"][0]), round(r[1, "zero3_offload_all"][1])) == (2, 209)
    assert round(r[2, "zero3"][0]) == 72  # two GPUs, no offload: the paper's 2 H200


def test_thinker_estimate_and_recipes():
    s = QWEN25_OMNI_7B_THINKER
    assert (
        s.largest_layer_params == EMB
        and round(s.total_params / 1e9, 2) == 8.93
        and round(s.trained_params / 1e9, 2) == 8.26
    )
    g, c = estimate(s, "zero3_offload_optimizer", 1)
    assert (round(g, 1), round(c, 1)) == (18.7, 184.5)
    assert resolve_recipe(s, 1, 140, 256).recipe == "zero3_offload_optimizer"
    assert resolve_recipe(s, 2, 140, 256).recipe == "zero3"
    assert resolve_recipe(s, 1, 24, 256).recipe == "zero3_offload_all"  # a small GPU, a big CPU
    no = resolve_recipe(s, 1, 140, 125)
    assert no.recipe is None and no.min_gpus_no_offload == 2 and round(no.min_cpu_gib_one_gpu) == 193


@pytest.mark.parametrize("offload,params,zero_init", [(o, p, z) for o in (0, 1) for p in (0, 1) for z in (0, 1)])
@pytest.mark.parametrize("gpus,nodes", [(1, 1), (2, 1), (8, 4)])
def test_formula_equals_deepspeeds(offload, params, zero_init, gpus, nodes):
    args = (8_931_813_888, EMB, gpus, nodes, bool(offload), bool(params), bool(zero_init), 1.5)
    ours = memory.zero3_model_states_mem(*args)
    if importlib.util.find_spec("deepspeed") is None:
        pytest.skip("deepspeed is not installed (requirements-gpu.txt): compared by hand against deepspeed 0.19.8")
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs

    assert ours == estimate_zero3_model_states_mem_needs(*args)


def test_thinker_count_from_config_on_meta_device():
    """The known table equals a count of Qwen2.5-Omni-7B's thinker dimensions built on the meta device."""
    from accelerate import init_empty_weights
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    from shala_lib.generation.tiny import _omni_tokenizer, thinker_config

    cfg = thinker_config(_omni_tokenizer(["a b c"] * 3, 300), size="7b")
    v = cfg.vision_config  # the real checkpoint's vision tower (transformers' default is larger)
    v.hidden_size, v.intermediate_size, v.num_heads, v.out_hidden_size = 1280, 3420, 16, 3584
    with init_empty_weights():
        m = Qwen2_5OmniThinkerForConditionalGeneration._from_config(cfg)
    got = memory.count_parameters(m, ("model.visual.",))
    want = QWEN25_OMNI_7B_THINKER
    assert (got.total_params, got.largest_layer_params, got.frozen_params) == (
        want.total_params, want.largest_layer_params, want.frozen_params
    )  # fmt: skip


# --- the dispatch, as a CPU dry run ------------------------------------------------------------------------
def test_one_gpu_256gb_is_full_finetuning_with_offload():
    plan = plan_training(PAPER, ["dataset=chaosnli"], gpus=1, gpu_mem_gib=140, cpu_mem_gib=256)
    assert plan.recipe == "zero3_offload_optimizer" and plan.config.lora is False
    assert plan.config.grpo["learning_rate"] == 1e-6 and plan.config.model == "Qwen/Qwen2.5-Omni-7B"
    cmd = plan.command
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    assert (
        cmd[cmd.index("--num_processes") + 1] == "1" and cmd[cmd.index("--config_file") + 1] == ACCELERATE_ZERO3_OFFLOAD
    )
    assert cmd[cmd.index("-m", 3) + 1] == "shala_lib.train" and "lora=true" not in cmd
    ds = plan.accelerate_config["deepspeed_config"]
    assert ds["deepspeed_config"]["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    assert ds["deepspeed_config"]["zero_optimization"]["offload_param"]["device"] == "none"
    assert "184.5" in plan.message and "zero3_offload_optimizer" in plan.message  # the estimate, printed first


def test_one_gpu_128gb_refuses_with_the_numbers():
    with pytest.raises(MemoryRefusal) as e:
        plan_training(PAPER, gpus=1, gpu_mem_gib=140, cpu_mem_gib=125)
    msg = str(e.value)
    for s in ("141.7", "18.7", "184.5", "209.5", ">= 193 GiB", "2 GPUs of 140 GiB", "ONE_GPU_RECIPE = 'lora'", "1e-05"):
        assert s in msg, s


def test_one_gpu_lora_only_when_asked():
    plan = plan_training(PAPER, gpus=1, gpu_mem_gib=140, cpu_mem_gib=125, one_gpu_recipe="lora")
    assert plan.recipe == "lora" and plan.config.lora is True and plan.config.grpo["learning_rate"] == 1e-5
    assert plan.command[1:3] == ["-m", "shala_lib.train"] and "Not the paper's method" in plan.message
    lr = plan_training(PAPER, ["grpo.learning_rate=5e-5"], gpus=1, one_gpu_recipe="lora", lora_learning_rate=2e-5)
    assert lr.config.grpo["learning_rate"] == 5e-5  # an explicit override wins
    with pytest.raises(ValueError, match="one_gpu_recipe"):
        plan_training(PAPER, gpus=1, one_gpu_recipe="auto")


def test_two_gpus_plain_zero3_and_small_gpus_offload_params():
    plan = plan_training(PAPER, gpus=2, gpu_mem_gib=140, cpu_mem_gib=256)
    assert plan.recipe == "zero3" and plan.config.lora is False and plan.config.grpo["learning_rate"] == 1e-6
    cmd = plan.command
    assert cmd[cmd.index("--config_file") + 1] == ACCELERATE_ZERO3 and cmd[cmd.index("--num_processes") + 1] == "2"
    assert plan.accelerate_config["deepspeed_config"]["offload_optimizer_device"] == "none"
    small = plan_training(PAPER, gpus=1, gpu_mem_gib=24, cpu_mem_gib=256)
    assert small.recipe == "zero3_offload_all" and "configs/deepspeed_zero3_offload_all.json" in small.command


def test_zero_gpus_cpu_smoke_settings():
    plan = plan_training(PAPER, ["seed=3"], gpus=0, cpu_overrides=CPU)
    assert plan.recipe == "cpu" and plan.command[1:3] == ["-m", "shala_lib.train"]
    assert plan.config.device == "cpu" and plan.config.grpo["max_steps"] == 2 and plan.overrides == ["seed=3", *CPU]


def test_unknown_model_keeps_todays_dispatch():
    small = ModelSize(135_000_000, 28_000_000)
    one = plan_training(PAPER, gpus=1, gpu_mem_gib=80, cpu_mem_gib=64, size=small)
    assert one.recipe == "single" and one.command[1:3] == ["-m", "shala_lib.train"]


def test_gpu_check_cpu_smoke_parses():
    """benchmarks/gpu_check.sh is valid bash and its driver's parts are listed in priority order."""
    assert subprocess.run(["bash", "-n", str(ROOT / "benchmarks/gpu_check.sh")]).returncode == 0
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/gpu_check.py"), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["grpo_7b_one_gpu", "learnability", "inference_floor", "zero3_bf16"]
