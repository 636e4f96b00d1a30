"""Dispatch training to GPUs as a subprocess, so the notebook kernel survives and papermill can
run it headless; stream its log with a progress bar and read back its artifacts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

_PROGRESS = re.compile(r"(\d+)/(\d+) \[")


def gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # noqa: BLE001
        return 0


IF_EXISTS = ("refuse", "overwrite", "resume")


def effective_if_exists(if_exists: str, run_dir: str | Path | None = None) -> str:
    """What the training command is told to do with an earlier run in `run_dir`: `refuse` (it stops and
    names the choices), `overwrite` (the earlier run is moved aside to `<name>.previous-N/`), `resume`
    (from its last checkpoint). `resume` asked for a `run_dir` without a checkpoint is `refuse`: a new
    run starts there when the folder holds no earlier run, and stops when it holds one."""
    if if_exists not in IF_EXISTS:
        raise ValueError(f"if_exists must be one of {IF_EXISTS}, got {if_exists!r}")
    if if_exists == "resume" and run_dir is not None:
        from shala_lib.training.run_dir import last_checkpoint

        if not Path(run_dir).is_dir() or last_checkpoint(Path(run_dir)) is None:
            return "refuse"
    return if_exists


def if_exists_flags(if_exists: str, run_dir: str | Path | None = None) -> list[str]:
    """The training command's flags for `effective_if_exists(if_exists, run_dir)`."""
    return {"overwrite": ["--overwrite"], "resume": ["--resume"]}.get(effective_if_exists(if_exists, run_dir), [])


def training_command(
    config: str | Path,
    overrides: Sequence[str] = (),
    gpus: int | None = None,
    accelerate_config: str = "configs/accelerate_zero3.yaml",
    resume: bool = False,
    if_exists: str = "refuse",
    run_dir: str | Path | None = None,
    use_accelerate: bool | None = None,
    launch_args: Sequence[str] = (),
) -> list[str]:
    """`python -m shala_lib.train` on CPU or one GPU; `accelerate launch` with ZeRO-3 on several, or on one
    when `use_accelerate` (the CPU-offload recipe: `plan_training`); `launch_args` go to accelerate.

    `if_exists` (see `if_exists_flags`; `run_dir` lets `resume` start runs that have no checkpoint yet);
    `resume=True` is `if_exists="resume"`."""
    if resume:
        if if_exists not in ("refuse", "resume"):
            raise ValueError(f"resume=True contradicts if_exists={if_exists!r}")
        if_exists = "resume"
    gpus = gpu_count() if gpus is None else gpus
    args = [str(config), *if_exists_flags(if_exists, run_dir), *(["--set", *overrides] if overrides else [])]
    if gpus > 1 if use_accelerate is None else use_accelerate:
        return [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            accelerate_config,
            "--num_processes",
            str(max(gpus, 1)),
            *launch_args,
            "-m",
            "shala_lib.train",
            *args,
        ]
    return [sys.executable, "-m", "shala_lib.train", *args]


def run_streaming(cmd: Sequence[str], log_path: str | Path, desc: str = "train", cwd: str | Path | None = None) -> int:
    """Run `cmd`, tee its output to `log_path` (appended after a header line: an earlier run's log is
    kept), drive a progress bar from the trainer's `i/N [`."""
    import datetime

    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = log_path.stat().st_size if log_path.exists() else 0
    with open(log_path, "a") as head:
        head.write(f"===== {datetime.datetime.now().isoformat(timespec='seconds')}: {' '.join(cmd)}\n")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    bar = tqdm(total=None, desc=desc, unit="step")
    with (
        open(log_path, "a") as log,
        subprocess.Popen(
            list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd, env=env, bufsize=1
        ) as proc,
    ):
        assert proc.stdout is not None
        buf = ""
        while True:
            ch = proc.stdout.read(1)
            if not ch:
                break
            log.write(ch)
            buf += ch
            if ch in "\r\n":
                m = _PROGRESS.search(buf)
                if m:
                    done, total = int(m.group(1)), int(m.group(2))
                    if bar.total != total:
                        bar.total = total
                    bar.n = done
                    bar.refresh()
                buf = ""
        rc = proc.wait()
    bar.close()
    if rc != 0:
        with open(log_path) as f:
            f.seek(start)
            tail = f.read()[-3000:]
        raise RuntimeError(f"training failed (exit {rc}); see {log_path}. Last output:\n{tail}")
    return rc


# --- which recipe trains here: GPUs, GPU and CPU memory (issue 22) ----------------------------------------
ACCELERATE_ZERO3 = "configs/accelerate_zero3.yaml"
ACCELERATE_ZERO3_OFFLOAD = "configs/accelerate_zero3_offload.yaml"  # optimizer state on the CPU
DEEPSPEED_OFFLOAD_ALL = "configs/deepspeed_zero3_offload_all.json"  # parameters too (--deepspeed_config_file)
ONE_GPU_RECIPES = ("full", "lora")
# LoRA's own learning rate, used only when LoRA is asked for (ONE_GPU_RECIPE = "lora"). The paper's 1e-6 is
# a full fine-tuning rate: a LoRA adapter starts at zero (B = 0) and moves only r x (d_in + d_out) weights
# per matrix, so at 1e-6 it barely leaves the base model. LoRA is usually run at about 10x the full
# fine-tuning rate or more (the LoRA and QLoRA papers: 1e-4 to 2e-4 for supervised tuning; RL recipes lower);
# 1e-5 = 10x the paper's rate is the conservative end for GRPO with beta 0 (no KL anchor).
LORA_LEARNING_RATE = 1e-5


class MemoryRefusal(RuntimeError):
    """Full fine-tuning does not fit this machine: the message has the estimate and the two choices."""


def gpu_memory_gib() -> float:
    """Total memory of GPU 0 in GiB (0 without a GPU)."""
    try:
        import torch

        return torch.cuda.get_device_properties(0).total_memory / 2**30 if torch.cuda.is_available() else 0.0
    except Exception:  # noqa: BLE001
        return 0.0


def cpu_memory_gib() -> float:
    """This machine's memory in GiB, or its cgroup's limit when lower (a container)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total / 2**30


def accelerate_config_for(recipe: str, path: str | Path | None = None) -> dict:
    """The accelerate config a recipe runs under, as a mapping (the committed file, with what the
    command line changes applied)."""
    import yaml

    path = Path(path or (ACCELERATE_ZERO3 if recipe == "zero3" else ACCELERATE_ZERO3_OFFLOAD))
    if not path.is_absolute() and not path.exists():
        path = Path(__file__).resolve().parents[2] / path
    cfg = yaml.safe_load(path.read_text())
    ds = cfg["deepspeed_config"]
    if recipe == "zero3_offload_all":
        ds["deepspeed_config_file"] = DEEPSPEED_OFFLOAD_ALL
    if "deepspeed_config_file" in ds:  # the DeepSpeed settings themselves, read in
        f = Path(ds["deepspeed_config_file"])
        ds["deepspeed_config"] = json.loads((f if f.exists() else path.parents[1] / f).read_text())
    return cfg


@dataclass
class TrainingPlan:
    """What `plan_training` resolved: the command, the experiment config it trains, the recipe, the
    accelerate config (None without accelerate), DeepSpeed's estimate, and the lines to print first."""

    command: list[str]
    config: Any
    recipe: str  # cpu | single | zero3 | zero3_offload_optimizer | zero3_offload_all | lora
    overrides: list[str]
    accelerate_config: dict | None = None
    accelerate_config_path: str | None = None
    choice: Any = None  # memory.RecipeChoice when an estimate was made
    message: str = ""


def plan_training(
    config: str | Path,
    overrides: Sequence[str] = (),
    gpus: int | None = None,
    gpu_mem_gib: float | None = None,
    cpu_mem_gib: float | None = None,
    one_gpu_recipe: str = "full",
    lora_learning_rate: float = LORA_LEARNING_RATE,
    cpu_overrides: Sequence[str] = (),
    if_exists: str = "refuse",
    run_dir: str | Path | None = None,
    size: Any = None,
) -> TrainingPlan:
    """Resolve how `config` + `overrides` trains on `gpus` GPUs of `gpu_mem_gib` with `cpu_mem_gib` CPU
    memory (each detected when None), without training: a dry run of the dispatch, usable on a CPU.

    - 0 GPUs: the CPU smoke settings (`cpu_overrides`), `python -m shala_lib.train`.
    - `one_gpu_recipe="lora"` on one GPU: LoRA (`lora=true`) at `lora_learning_rate`, asked for explicitly.
    - otherwise full fine-tuning: DeepSpeed's ZeRO-3 estimate (`shala_lib.training.memory`) picks plain
      ZeRO-3, ZeRO-3 with the optimizer offloaded to CPU, or with parameters offloaded too (one GPU:
      `accelerate launch --num_processes 1 --config_file configs/accelerate_zero3_offload.yaml`); when none
      fits, `MemoryRefusal` with the numbers and the two choices (a bigger machine, or LoRA explicitly).
      A model whose size cannot be read without its weights keeps today's dispatch, said in `message`.
    A config that already sets `lora: true` is LoRA asked for: it trains as written, at its own rate."""
    from shala_lib.training.config import ExperimentConfig
    from shala_lib.training.memory import model_size, refusal_message, resolve_recipe

    if one_gpu_recipe not in ONE_GPU_RECIPES:
        raise ValueError(f"one_gpu_recipe must be one of {ONE_GPU_RECIPES}, got {one_gpu_recipe!r}")
    gpus = gpu_count() if gpus is None else gpus
    extra = list(overrides)
    kw = {"if_exists": if_exists, "run_dir": run_dir}
    if gpus == 0:
        extra += list(cpu_overrides)
        cfg = ExperimentConfig.from_yaml(config).with_overrides(extra)
        msg = "No GPU: the CPU smoke settings (" + ", ".join(cpu_overrides) + ")."
        return TrainingPlan(training_command(config, extra, gpus=0, **kw), cfg, "cpu", extra, message=msg)
    if gpus == 1 and one_gpu_recipe == "lora":
        extra = ["lora=true", f"grpo.learning_rate={lora_learning_rate:g}", *extra]  # explicit overrides win
        cfg = ExperimentConfig.from_yaml(config).with_overrides(extra)
        msg = (
            f"One GPU, LoRA as asked (ONE_GPU_RECIPE = 'lora'): r {cfg.lora_r}, learning rate "
            f"{cfg.grpo['learning_rate']:g} (LoRA's own; the paper fine-tunes all weights at 1e-6). Not the paper's method."  # noqa: E501
        )
        return TrainingPlan(training_command(config, extra, gpus=1, **kw), cfg, "lora", extra, message=msg)
    cfg = ExperimentConfig.from_yaml(config).with_overrides(extra)
    if cfg.lora:
        msg = f"LoRA as the config asks (lora: true), learning rate {cfg.grpo['learning_rate']:g}."
        return TrainingPlan(training_command(config, extra, gpus=gpus, **kw), cfg, "lora", extra, message=msg)
    size = size if size is not None else model_size(cfg.model)
    if size is None:
        recipe = "zero3" if gpus > 1 else "single"
        msg = f"No memory estimate for {cfg.model} (its config cannot be read without the weights): {recipe}."
        acc = accelerate_config_for("zero3") if gpus > 1 else None
        return TrainingPlan(
            training_command(config, extra, gpus=gpus, **kw), cfg, recipe, extra, acc,
            ACCELERATE_ZERO3 if gpus > 1 else None, message=msg,
        )  # fmt: skip
    gpu_mem_gib = gpu_memory_gib() if gpu_mem_gib is None else gpu_mem_gib
    cpu_mem_gib = cpu_memory_gib() if cpu_mem_gib is None else cpu_mem_gib
    choice = resolve_recipe(size, gpus, gpu_mem_gib, cpu_mem_gib)
    lora_hint = (
        f"ONE_GPU_RECIPE = 'lora' in notebook 03 / papermill_params (LoRA r {cfg.lora_r} on the language model at "
        f"its own learning rate {lora_learning_rate:g}), or --set lora=true grpo.learning_rate={lora_learning_rate:g} "
        "for shala-train"
    )
    if choice.recipe is None:
        raise MemoryRefusal(refusal_message(choice, cfg.model, lora_hint))
    recipe = choice.recipe
    msg = f"{choice.table()}\nFull fine-tuning, learning rate {cfg.grpo['learning_rate']:g}: {recipe}"
    if gpus == 1 and recipe == "zero3":  # the model states fit one GPU: no DeepSpeed needed
        return TrainingPlan(
            training_command(config, extra, gpus=1, **kw), cfg, "single", extra, choice=choice, message=msg + " (one process, no ZeRO)."  # noqa: E501
        )  # fmt: skip
    path = ACCELERATE_ZERO3 if recipe == "zero3" else ACCELERATE_ZERO3_OFFLOAD
    launch = ["--deepspeed_config_file", DEEPSPEED_OFFLOAD_ALL] if recipe == "zero3_offload_all" else []
    cmd = training_command(
        config, extra, gpus=gpus, accelerate_config=path, use_accelerate=True, launch_args=launch, **kw
    )
    msg += (
        f" (accelerate launch --num_processes {gpus} --config_file {path}{' ' + ' '.join(launch) if launch else ''})."
    )
    return TrainingPlan(cmd, cfg, recipe, extra, accelerate_config_for(recipe, path), path, choice, msg)
