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
# # 01 · Data preparation
# Builds the canonical tables (one row per item: label counts, empirical distribution, normalized
# entropy, majority label, ambiguity level, seeded split) for every dataset present, then shows the
# statistics the paper reports in its Tables 5-10 and the distribution of annotator disagreement.
# Datasets whose files are absent are listed with what to download — never silently skipped.

# %% tags=["parameters"]
DATASETS = ["chaosnli", "goemotions", "msp_podcast"]  # datasets to prepare
SEED = 42  # split seed
LOAD_OPTIONS = {}  # loader options for every dataset, e.g. {"subset": "snli"} (see data.loading.load)
DATA_DIR = None  # data root; None: $SHALA_DATA_DIR or ../shared/data
PROCESSED_DIR = "runs/processed"  # processed parquet tables
RESULTS_DIR = "results"  # statistics tables (CSV, Markdown, LaTeX)
FIGURES_DIR = "figures"  # figures (PNG, PDF)

# %%
import logging

from IPython.display import Markdown, display

from shala_lib.pipeline.prepare import prepare_dataset

logging.basicConfig(level=logging.WARNING)
prepared = {
    name: prepare_dataset(name, SEED, DATA_DIR, PROCESSED_DIR, RESULTS_DIR, FIGURES_DIR, **LOAD_OPTIONS)
    for name in DATASETS
}
missing = {n: p.missing for n, p in prepared.items() if p.table is None}
print(f"prepared: {[n for n in prepared if n not in missing]}; not available: {list(missing)}")
for name, why in missing.items():
    display(Markdown(f"**{name}** is not available here: {why}"))

# %% [markdown]
# ## Statistics (paper Tables 5-10) and disagreement per dataset
# ChaosNLI bins normalized entropy into low [0, .33), medium [.33, .66), high [.66, 1]; GoEmotions and
# MSP-Podcast count active labels (1, 2, 3, 4+). Skipped rows, if any, are counted in `skipped`.

# %%
for name, p in prepared.items():
    if p.table is None:
        continue
    display(Markdown(f"### {name}: {len(p.table):,} items; skipped rows: {p.table.attrs.get('skipped', {}) or 'none'}"))
    for key, table in p.tables.items():
        display(Markdown(f"**{key}**"), table)
    display(Markdown(f"![{name}]({FIGURES_DIR}/fig_{name}_ambiguity_distribution.png)"))
