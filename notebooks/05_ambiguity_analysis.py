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
# # 05 · Ambiguity-level and per-class analysis (paper Figures 2-7)
# Per ambiguity level: boxplots of per-item JSD and BC, lines of accuracy and macro F1 (one colour
# per method, the same in every figure). Per gold majority class: 2x2 panels. Under each figure,
# Section 5.2 for every metric (JSD, BC, accuracy, macro F1, W-F1, plus `EXTRA_METRICS`): its value
# per level, the relative change from the lowest to the highest level, and the tests of degradation
# across levels on the per-item values (Kruskal-Wallis; Spearman trend; accuracy: per-item
# correctness; F1 and W-F1 have no per-item value, so no test), with the numbers the paper reports
# beside ours (F1 -32.0% for SHALA-LLM, -40.2% for MLS; MLS BC -28.56%; p > 0.05 for SHALA-LLM's JSD
# and BC). Macro F1 averages over all classes (App. E), also in groups that lack one. Same items for
# every method.

# %% tags=["parameters"]
DATASET = "chaosnli"
ZERO_SHOT_FILE = "runs/zero_shot/predictions_chaosnli_test_zero_shot_prefill.jsonl"  # from notebook 02
TRAIN_DIR = "runs/train"  # from notebook 03
RUN_PREFIX = "chaosnli_smollm2_shala"
PROFILE = "smoke"
METHODS = None  # None: every registered method that trains (shala_lib.scoring.methods), in its order
SEED = 42
DATA_DIR = None
RESULTS_DIR = "results"
FIGURES_DIR = "figures"
EXTRA_METRICS = ()  # more rows in the degradation table, e.g. ("manhattan", "tvd", "kl", "f1_present")
INTERACTIVE = True  # build the sample inspector and run comparer widgets

PROCESSED_DIR = None  # notebook 01's prepared tables (the runner passes them); None: read the data files
# %%
from IPython.display import Markdown, display

from shala_lib.evaluation.analysis import (
    DEGRADATION_METRICS,
    degradation_table,
    grouped_class_metrics,
    grouped_metrics,
    per_item_scores,
    plot_by_class,
    plot_by_level,
)
from shala_lib.evaluation.comparison import load_comparison
from shala_lib.pipeline.artifacts import write_table
from shala_lib.scoring.methods import trained_methods
from shala_lib.viz.plots import save_figure

METHODS = list(trained_methods()) if METHODS is None else list(METHODS)

cmp = load_comparison(
    DATASET, ZERO_SHOT_FILE, TRAIN_DIR, RUN_PREFIX, PROFILE, METHODS, DATA_DIR, SEED, processed_dir=PROCESSED_DIR
)
spec, items, gold, preds, files = cmp.spec, cmp.items, cmp.gold, cmp.preds, cmp.files
scores = per_item_scores(preds, gold, items)
levels = list(spec.levels)
per_level = items["ambiguity_level"].value_counts().reindex(levels).fillna(0).astype(int)
print(f"{len(items)} items; per level: {per_level.to_dict()}")

# %% [markdown]
# ## By ambiguity level (Figure 2)

# %%
by_level = grouped_metrics(preds, gold, spec.classes, items["ambiguity_level"], levels)
fig = plot_by_level(scores, by_level, levels, title=f"{spec.display_name}: performance by ambiguity level ({PROFILE})")
save_figure(fig, FIGURES_DIR, f"fig2_{spec.name}_ambiguity_{PROFILE}")
deg = degradation_table(scores, by_level, levels, [*DEGRADATION_METRICS, *EXTRA_METRICS], dataset=spec.name)
write_table(by_level, RESULTS_DIR, f"{spec.name}_{PROFILE}_metrics_by_ambiguity", floatfmt=".3f")
write_table(deg, RESULTS_DIR, f"{spec.name}_{PROFILE}_degradation_tests", floatfmt=".3g")
display(fig, Markdown("**Degradation across levels, every metric (paper Section 5.2 beside ours):**"), deg.round(4))

# %% [markdown]
# ## By gold majority class (Figure 3)

# %%
by_class = grouped_class_metrics(preds, gold, spec.classes, items["majority"])  # + class_f1, the paper's F1
fig = plot_by_class(
    by_class, spec.classes, title=f"{spec.display_name}: performance by gold majority class ({PROFILE})"
)
save_figure(fig, FIGURES_DIR, f"fig3_{spec.name}_per_class_{PROFILE}")
write_table(by_class, RESULTS_DIR, f"{spec.name}_{PROFILE}_metrics_by_class", floatfmt=".3f")
fig

# %% [markdown]
# ## Inspect single samples
# Filter by split, ambiguity level, gold class, "methods disagree" or text; step through items; click
# an item in the comparer's list of worst items (where method A's JSD exceeds B's most) to open it.

# %%
if INTERACTIVE:
    from shala_lib.generation.predictions import read_predictions
    from shala_lib.viz.widgets import RunComparer, SampleInspector

    inspector = SampleInspector(items, {m: read_predictions(p) for m, p in files.items()}, spec)
    comparer = RunComparer(scores, inspector)
    display(comparer.widget(), inspector.widget())
