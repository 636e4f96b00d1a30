# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · GRPO training: SHALA, SHALA w/o Ambi-En, MLS
# Each method is trained with TRL's `GRPOTrainer` in a **subprocess** (`python -m shala_lib.train`,
# or `accelerate launch` with DeepSpeed ZeRO-3 on several GPUs), so this kernel survives and
# papermill can run it headless. The log streams into a progress bar; the curves come from the
# run's `metrics.csv`; after training each checkpoint is evaluated greedily on the test split.
# Without a GPU the CPU smoke configuration runs instead (a few steps: a pipeline check, not a result; only
# the top 8 decoder layers train there, which halves a CPU step: the backward pass stops at them).
#
# **On GPUs the method is the config's**: full fine-tuning stays full fine-tuning. Before training, DeepSpeed's
# ZeRO-3 memory estimate for the model is printed (`shala_lib.training.memory`) and picks the recipe: plain
# ZeRO-3 on several GPUs (the paper's 2 H200), ZeRO-3 with the optimizer state in CPU memory on one GPU (the
# same mathematics, slower: ~200 GB of RAM for Qwen2.5-Omni-7B), or a stop with the numbers when GPU or CPU
# memory cannot hold it. LoRA runs only when asked: `ONE_GPU_RECIPE = "lora"` (at `LORA_LEARNING_RATE`).
#
# **A run is never deleted.** Every method's config and run folder are checked before any method trains.
# `IF_EXISTS` says what happens when a method's run folder already holds an earlier run:
# `"refuse"` (the default) stops with the folder named and nothing touched; `"resume"` continues each
# method from its last checkpoint (`--resume`; a method without one starts new); `"overwrite"` moves the
# earlier run aside, whole, to `<name>.previous-N/` beside it (`--overwrite`) and trains again. The smoke
# profile re-runs with `"overwrite"`, so `<name>.previous-1/`, `-2/`, ... accumulate under `runs/smoke/train`
# on every re-run: that is the contract (delete them yourself when you no longer want them). Each method's
# log (`<name>.log` beside its folder) is appended to, one header line per run.

# %% tags=["parameters"]
CONFIG = "configs/chaosnli_smollm2.yaml"  # experiment YAML (see configs/)
METHODS = None  # None: every registered method that trains (shala_lib.scoring.methods), in its order
PROFILE = "smoke"  # smoke: CPU-sized overrides below are applied when no GPU is present
GPUS = None  # None: all visible GPUs
OUTPUT_DIR = "runs/train"
IF_EXISTS = "refuse"  # an earlier run in a method's folder: "refuse" | "resume" | "overwrite" (moved to .previous-N)
OVERRIDES = []  # extra overrides for every method, written as in CPU_OVERRIDES below
ONE_GPU_OVERRIDES = []  # extra overrides applied on exactly one GPU
ONE_GPU_RECIPE = "full"  # one GPU: full (full fine-tuning, ZeRO-3 CPU offload when needed, else a stop) or lora
LORA_LEARNING_RATE = 1e-5  # the LoRA rate, used only with ONE_GPU_RECIPE lora (10x the paper full-FT rate 1e-6)
CPU_OVERRIDES = [
    "device=cpu",
    "max_train_items=16",
    "max_eval_items=16",
    "eval_batch_size=16",
    "prompts_per_step=2",
    "grpo.per_device_train_batch_size=8",
    "grpo.max_steps=2",
    "grpo.max_completion_length=24",
    "grpo.save_steps=2",
    "train_top_layers=8",
    "report_to=[]",
]  # noqa: E501
RESULTS_DIR = "results"
FIGURES_DIR = "figures"

PROCESSED_DIR = None  # notebook 01's prepared tables (the runner passes them); None: read the data files
# %%
import json
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from shala_lib.paths import method_run_dir
from shala_lib.pipeline.artifacts import write_table
from shala_lib.scoring.methods import trained_methods
from shala_lib.training.config import ExperimentConfig
from shala_lib.training.dispatch import effective_if_exists, gpu_count, plan_training, run_streaming
from shala_lib.training.run_dir import RunExistsError, plan_run_dir
from shala_lib.viz.plots import plot_training_curves, save_figure

METHODS = list(trained_methods()) if METHODS is None else list(METHODS)

gpus = gpu_count() if GPUS is None else GPUS
extra = list(OVERRIDES) + (list(ONE_GPU_OVERRIDES) if gpus == 1 else [])
if PROCESSED_DIR is not None:  # train and evaluate on notebook 01's prepared table
    extra.append(f"processed_dir={PROCESSED_DIR}")
base = ExperimentConfig.from_yaml(CONFIG).with_overrides(list(OVERRIDES))  # names and dataset as trained
jobs = {}
for method in METHODS:  # every method checked (config, memory, run folder) before any of them trains
    run_dir = method_run_dir(OUTPUT_DIR, base.name, method, PROFILE)  # where notebooks 04-06 look
    overrides = [*extra, f"method={method}", f"name={run_dir.name}", f"output_dir={OUTPUT_DIR}"]  # per-method last
    training = plan_training(
        CONFIG,
        overrides,
        gpus=gpus,
        one_gpu_recipe=ONE_GPU_RECIPE,
        lora_learning_rate=LORA_LEARNING_RATE,
        cpu_overrides=CPU_OVERRIDES,
        if_exists=IF_EXISTS,
        run_dir=run_dir,
    )  # MemoryRefusal (with the numbers and the choices) when full fine-tuning cannot fit here
    if not jobs:
        display(Markdown(f"**{training.recipe}** ({gpus} GPU(s))"))
        print(training.message)
    try:
        plan_run_dir(run_dir, effective_if_exists(IF_EXISTS, run_dir))  # read-only
    except RunExistsError as e:
        raise RunExistsError(
            f"{e}\nHere: set IF_EXISTS to 'resume' or 'overwrite' (papermill -p IF_EXISTS ...)"
        ) from None
    jobs[method] = (run_dir, training.command)
runs = {}
for method, (run_dir, cmd) in jobs.items():
    print(" ".join(cmd))
    run_streaming(cmd, Path(OUTPUT_DIR) / f"{run_dir.name}.log", desc=method)
    runs[method] = run_dir

# %% [markdown]
# ## Training curves (reward, reward spread, unparsable fraction, zero-variance groups)

# %%
metrics = pd.concat([pd.read_csv(d / "metrics.csv").assign(method=m) for m, d in runs.items()], ignore_index=True)
fig = plot_training_curves(metrics, title=f"GRPO on {base.dataset} ({PROFILE})")
save_figure(fig, FIGURES_DIR, f"fig_training_curves_{base.dataset}_{PROFILE}")
fig

# %% [markdown]
# ## Test-split metrics of each trained checkpoint (greedy decoding, as the paper)

# %%
rows = [{"method": m, **json.loads((d / "metrics_test.json").read_text())} for m, d in runs.items()]
table = pd.DataFrame(rows)[["method", "n", "n_unparsable", "jsd", "jsd_e", "bc", "acc", "f1", "wf1"]]
write_table(table, RESULTS_DIR, f"grpo_{base.dataset}_{PROFILE}_test", floatfmt=".3f")
table.round(3)
