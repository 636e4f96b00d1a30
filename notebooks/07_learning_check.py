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
# # 07 · Learning check: does our GRPO loop learn the raters' distribution?
# The generated triage probe (four cue groups of support messages, each with its own rater
# distribution) made learnable on purpose: a tiny from-scratch model whose every prompt word and every
# answer level 0.0 ... 1.0 is one token, trained with our GRPO machinery (rewards, parser, answer
# grammar, TRL's trainer as we configure it) by SHALA, SHALA w/o Ambi-En and MLS, on two seeds
# (`configs/learning_check.yaml`; `shala_lib.training.learning_check`). It passes when, on every seed,
# SHALA beats the best constant answer by 0.05 JSD with answers that differ by cue group, and MLS
# ends near one-hot on each group's majority with a worse JSD than SHALA. CPU, about 5 minutes:
# `python -m shala_lib.reproduce --profile learning_check`.

# %% tags=["parameters"]
CONFIG = "configs/learning_check.yaml"
SEEDS = [0, 1]
METHODS = None  # None: SHALA, SHALA w/o Ambi-En and MLS
# config overrides (KEY=VALUE strings, e.g. grpo.max_steps=100)
OVERRIDES = []
OUT_DIR = "runs/learning_check"
PROFILE = "learning_check"
RESULTS_DIR = "results"
FIGURES_DIR = "figures"
REQUIRE_PASS = True  # stop with an error (after writing the tables and figure) when the check fails

# %%
from IPython.display import Markdown, display

from shala_lib.data.specs import get_spec
from shala_lib.pipeline.artifacts import write_table
from shala_lib.training.learning_check import METHODS as CHECK_METHODS
from shala_lib.training.learning_check import (
    check_config,
    group_table,
    passed,
    progress_line,
    results_table,
    run_check,
    verdicts,
)
from shala_lib.viz.plots import plot_learning_check, save_figure

METHODS = list(CHECK_METHODS) if METHODS is None else list(METHODS)
spec = get_spec(check_config(CONFIG, OVERRIDES).dataset)

# %% [markdown]
# ## Train every method on every seed
# Each seed builds its own from-scratch model (reused only when built by the same recipe); the runs go to
# `OUT_DIR` (a rerun moves the earlier ones aside to `<name>.previous-N`: they are the check's scratch
# space, the tables below are its record).

# %%
rows = run_check(
    CONFIG,
    SEEDS,
    METHODS,
    OUT_DIR,
    OVERRIDES,
    progress=lambda r: print(progress_line(r), flush=True),
)

# %% [markdown]
# ## Held-out results beside the constant answers
# JSD (base 2) on the 72 held-out items; "best constant" is the single answer that scores best on them
# (what a collapsed model can at most reach), "uniform" the answer 1/3 each.

# %%
table = results_table(rows)
write_table(table, RESULTS_DIR, f"learning_check_{PROFILE}", floatfmt=".3f")
display(Markdown(table.to_markdown(index=False, floatfmt=".3f")))
cpu = {seed: sum(r["cpu_s"] for r in rows if r["seed"] == seed) for seed in SEEDS}
print("CPU time for the methods together, per seed:", {s: f"{c / 60:.1f} min" for s, c in cpu.items()})

# %% [markdown]
# ## The learned answer per cue group, beside the raters'

# %%
groups = group_table(rows, spec.classes)
write_table(groups, RESULTS_DIR, f"learning_check_{PROFILE}_by_group", floatfmt=".2f")
fig = plot_learning_check(groups, spec.classes)
save_figure(fig, FIGURES_DIR, f"fig_learning_check_{PROFILE}")
fig

# %% [markdown]
# ## Verdict

# %%
verdict = verdicts(rows)
display(Markdown("\n".join(f"- {k}: **{'pass' if v else 'FAIL'}**" for k, v in verdict.items())))
if REQUIRE_PASS and not passed(verdict):
    raise AssertionError(f"the learning check failed: {verdict or 'nothing judged (neither shala nor mls ran)'}")
