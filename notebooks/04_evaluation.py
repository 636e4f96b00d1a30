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
# # 04 · Evaluation: the paper's Table 1 and Table 2
# Every method is scored on the **same** test items: zero-shot (notebook 02), MLS, SHALA-LLM
# (w/o Ambi-En) and SHALA-LLM (notebook 03), beside data-only reference rows. Changes against
# zero-shot are in brackets (+ = better); best model row bold, second underlined; the number of
# unparsable outputs (scored as uniform) is given per row. As in the paper, both tables come in
# blocks: the whole dataset, then each subset (ChaosNLI, ChaosNLI-M, ChaosNLI-S: the same predictions
# scored per subset), each block ranked and compared with its own zero-shot row. Bootstrap 95% CIs
# are in a companion table. Table 2 puts our numbers beside the published ones, each with its source
# and JSD log base. "Table 1 beside the paper's" lists, method by method, our value, the paper's
# Table 1 value and the difference, with each side's change against its own zero-shot row.

# %% tags=["parameters"]
DATASET = "chaosnli"
ZERO_SHOT_FILE = "runs/zero_shot/predictions_chaosnli_test_zero_shot_prefill.jsonl"  # from notebook 02
TRAIN_DIR = "runs/train"  # from notebook 03
RUN_PREFIX = "chaosnli_smollm2_shala"  # the config's name
PROFILE = "smoke"
METHODS = None  # None: every registered method that trains (shala_lib.scoring.methods), in its order
N_BOOT = 1000
SEED = 42
DATA_DIR = None
RESULTS_DIR = "results"
EXTRA_METRICS = ()  # metrics beyond the paper's five as Table 1 columns, e.g. ("manhattan", "tvd", "kl", "f1_present")

PROCESSED_DIR = None  # notebook 01's prepared tables (the runner passes them); None: read the data files
# %%
from IPython.display import Markdown, display

from shala_lib.evaluation.comparison import load_comparison
from shala_lib.evaluation.tables import (
    block_scores,
    confidence_table,
    table1,
    table1_vs_paper,
    table2_blocks,
    table_blocks,
    write_table1,
)
from shala_lib.pipeline.artifacts import write_table
from shala_lib.scoring.collapse import warn_if_collapsed
from shala_lib.scoring.methods import method_label, trained_methods
from shala_lib.scoring.metrics import extra_metrics, table_metrics

METHODS = list(trained_methods()) if METHODS is None else list(METHODS)
unknown = set(EXTRA_METRICS) - set(extra_metrics())
if unknown:
    raise ValueError(f"EXTRA_METRICS {sorted(unknown)} unknown; choose from {list(extra_metrics())}")
TABLE_METRICS = [*table_metrics(), *EXTRA_METRICS]

cmp = load_comparison(
    DATASET,
    ZERO_SHOT_FILE,
    TRAIN_DIR,
    RUN_PREFIX,
    PROFILE,
    METHODS,
    DATA_DIR,
    SEED,
    with_references=True,
    processed_dir=PROCESSED_DIR,
)
spec, items, gold, preds = cmp.spec, cmp.items, cmp.gold, cmp.preds
blocks = table_blocks(spec, items)
scores = block_scores(preds, gold, spec.classes, blocks)
print(
    f"{len(items)} test items scored by every method; blocks: "
    + ", ".join(f"{b.name} ({b.mask.sum()})" for b in blocks)
)

# %% [markdown]
# ## Table 1
# Beside each row: how many distinct answers the method gave and its JSD against the best constant
# answer on the same items (< 0: better than any input-blind answer). A method whose answers do not
# depend on the input is named in a warning below.

# %%
for _, row in scores[(scores["block"] == blocks[0].name) & scores["method"].isin(["zero_shot", *METHODS])].iterrows():
    if row["input_independent"]:
        warn_if_collapsed(row.to_dict(), f"{method_label(row['method'])} on {spec.name}")
t1 = table1(scores, metrics=TABLE_METRICS)
write_table1(scores, RESULTS_DIR, f"table1_{spec.name}_{PROFILE}", metrics=TABLE_METRICS)
display(Markdown(t1.to_markdown(index=False)))

# %% [markdown]
# ## Table 1 beside the paper's
# The paper's Table 1 (`shala_lib/resources/paper_table1.csv`, JSD base 2) for the same blocks:
# ours, the paper's, ours − paper, and each side's change against its own zero-shot row (+ = better;
# the paper's as printed). Not written for a dataset the paper does not report.

# %%
vs_paper = table1_vs_paper(scores, blocks)
if len(vs_paper):
    write_table(vs_paper, RESULTS_DIR, f"table1_{spec.name}_{PROFILE}_vs_paper", floatfmt=".3f")
    display(Markdown(vs_paper.to_markdown(index=False, floatfmt=".3f")))
else:
    print(f"the paper reports no Table 1 rows for {spec.name}")

# %% [markdown]
# ## Bootstrap 95% confidence intervals

# %%
ci = confidence_table(preds, gold, spec.classes, n_boot=N_BOOT, seed=SEED, blocks=blocks)
write_table(ci, RESULTS_DIR, f"table1_{spec.name}_{PROFILE}_bootstrap_ci", floatfmt=".3f")
ci.pivot(index=["block", "method"], columns="metric", values=["ci_low", "ci_high"]).round(3)

# %% [markdown]
# ## Table 2: beside published numbers (sources and JSD log base per row; base 2 = 1.2011 × base e)

# %%
ours = scores[scores["method"].isin(["zero_shot", *METHODS])].assign(method=lambda d: d["method"].map(method_label))
t2 = table2_blocks(ours, blocks)
write_table(t2, RESULTS_DIR, f"table2_{spec.name}_{PROFILE}", floatfmt=".3f")
t2
