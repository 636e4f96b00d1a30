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
# # 02 · Zero-shot baselines
# The paper's zero-shot baseline: the model reads the paper's prompt (Tables 11-13) and writes a
# verbalized distribution, decoded greedily. Small models rarely follow the format, so the workbench
# offers answer prefill and constrained decoding as options; each is run on the **same items** and
# compared with data-only reference rows (uniform, constant training-split mean, one-hot majority
# oracle). Unparsable outputs score as the uniform distribution and are counted in `n_unparsable`.
# MSP-Podcast runs speech + text as in the paper: Qwen2.5-Omni hears each clip and reads its transcript
# (`MODALITY = "text"` runs the transcripts alone, for text-only models).

# %% tags=["parameters"]
DATASETS = ["chaosnli"]  # datasets to evaluate
MODEL = "embedded:smollm2-135m-instruct"  # Hub id, local directory, or the embedded default
MODALITY = None  # None: each dataset's own (MSP-Podcast: speech+text, needs Qwen2.5-Omni); or "text"
OPTIONS = ["paper", "prefill"]  # any of: paper, prefill, prefill+constrained, prefill+simplex
LIMIT = 64  # items per test split (None: all)
BATCH_SIZE = 16
MAX_NEW_TOKENS = 64
SEED = 42
DATA_DIR = None
OUT_DIR = "runs/zero_shot"  # predictions (resumable JSONL)
RESULTS_DIR = "results"

PROCESSED_DIR = None  # notebook 01's prepared tables (the runner passes them); None: read the data files
# %%
import logging

import pandas as pd
from IPython.display import Markdown, display

from shala_lib.data.loading import DataNotFoundError, dataset_table
from shala_lib.data.specs import get_spec
from shala_lib.evaluation.zero_shot import run_zero_shot
from shala_lib.generation.models import load_model
from shala_lib.pipeline.artifacts import write_table

logging.basicConfig(level=logging.WARNING)
model, tokenizer = load_model(MODEL)
tables = {}
for name in DATASETS:
    try:
        table = dataset_table(name, PROCESSED_DIR, DATA_DIR, SEED)
    except DataNotFoundError as e:
        display(Markdown(f"**{name}** is not available: {e}"))
        continue
    tables[get_spec(name).name] = run_zero_shot(  # a definition file is named by its definition
        table,
        name,
        OUT_DIR,
        MODEL,
        OPTIONS,
        LIMIT,
        BATCH_SIZE,
        MAX_NEW_TOKENS,
        model=model,
        tokenizer=tokenizer,
        modality=MODALITY,
    )

# %% [markdown]
# ## Parse rate and metrics on the same items

# %%
cols = ["method", "parse_rate", "n", "n_unparsable", "jsd", "jsd_e", "bc", "acc", "f1", "wf1"]
for name, res in tables.items():
    display(Markdown(f"### {name}"), res[cols].round(3))
    write_table(res[cols], RESULTS_DIR, f"zero_shot_{name}_test", floatfmt=".3f")

# %% [markdown]
# ## A few raw outputs per option

# %%
for res in tables.values():
    for path in res["predictions"]:
        if path:
            preds = pd.read_json(path, lines=True)
            display(Markdown(f"`{path}`"), preds[["id", "status", "raw_text", "pred"]].head(3))
