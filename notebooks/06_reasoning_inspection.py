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
# # 06 · Reasoning inspection (paper Section 5.3, Tables 3 and 14-16)
# Each method answers with the reasoning prompt of App. H (explain, then the JSON on its own line).
# We show one low, one medium and one high ambiguity example with the human distribution and every
# method's reasoning and distribution, and count how often the reasoning considers more than one
# interpretation, per method and ambiguity level. For ChaosNLI, the paper's own items of Tables 3
# and 14-16 (found by their text, whichever split holds them; each marked with its table and split)
# are shown too, our models' reasoning beside the distributions the paper reports.

# %% tags=["parameters"]
DATASET = "chaosnli"
ZERO_SHOT_MODEL = "embedded:smollm2-135m-instruct"
MODALITY = None  # None: the dataset's own (MSP-Podcast: speech+text, needs Qwen2.5-Omni); or "text"
TRAIN_DIR = "runs/train"  # from notebook 03
RUN_PREFIX = "chaosnli_smollm2_shala"
PROFILE = "smoke"
METHODS = None  # None: every registered method that trains (shala_lib.scoring.methods), in its order
N_COUNT_ITEMS = 60  # test items for the counts (None: all)
MAX_NEW_TOKENS = 512  # the reasoning variant needs room
BATCH_SIZE = 16
SEED = 42
DATA_DIR = None
OUT_DIR = "runs/reasoning"
RESULTS_DIR = "results"

PROCESSED_DIR = None  # notebook 01's prepared tables (the runner passes them); None: read the data files
# %%
import gc

import pandas as pd
from IPython.display import Markdown, display

from shala_lib.data.loading import dataset_table, first_items
from shala_lib.data.specs import get_spec
from shala_lib.evaluation.reasoning import (
    example_tables,
    find_paper_items,
    interpretation_counts,
    paper_example_table,
    pick_examples,
    reasoning_model_paths,
)
from shala_lib.generation.inference import predict
from shala_lib.generation.models import load_model
from shala_lib.pipeline.artifacts import write_table
from shala_lib.scoring.methods import trained_methods

METHODS = list(trained_methods()) if METHODS is None else list(METHODS)

spec = get_spec(DATASET)
table = dataset_table(DATASET, PROCESSED_DIR, DATA_DIR, SEED)
test = table[table["split"] == "test"]
examples = pick_examples(test, spec.levels, seed=SEED)
count_items = first_items(test, N_COUNT_ITEMS)  # every ambiguity level in turn
paper_items = find_paper_items(table, spec)  # the paper's Tables 3/14-16 items (ChaosNLI), any split
items = pd.concat([examples, count_items, paper_items[list(test.columns)]]).drop_duplicates("id")
preds = {}
for method, path in reasoning_model_paths(ZERO_SHOT_MODEL, TRAIN_DIR, RUN_PREFIX, PROFILE, METHODS).items():
    model, tok = load_model(path)
    preds[method] = predict(
        items,
        spec,
        model,
        tok,
        f"{OUT_DIR}/{spec.name}_{PROFILE}_reasoning_{method}.jsonl",
        method=method,
        model_name=path,
        variant="reasoning",
        batch_size=BATCH_SIZE,
        max_new_tokens=MAX_NEW_TOKENS,
        modality=MODALITY,
    )
    del model
    gc.collect()
print({m: p["status"].value_counts().to_dict() for m, p in preds.items()})

# %% [markdown]
# ## One example per ambiguity level (Tables 3, 14-16)

# %%
ex_table = example_tables(examples, preds, spec)
write_table(ex_table, RESULTS_DIR, f"{spec.name}_{PROFILE}_reasoning_examples", floatfmt=".2f")
for _, part in ex_table.groupby("ambiguity_level", sort=False):
    display(Markdown(f"### {part['ambiguity_level'].iloc[0]} ambiguity\n\n{part['text'].iloc[0]}"))
    display(part[["method", *spec.classes, "status", "reasoning"]].round(2))

# %% [markdown]
# ## The paper's own examples (Tables 3, 14-16)
# Our models' reasoning on the items the paper shows, each followed by the distributions the paper
# reports for it ("paper: ..." rows); `source` names the table and the split holding the item.

# %%
if len(paper_items):
    paper_table = paper_example_table(paper_items, preds, spec)
    write_table(paper_table, RESULTS_DIR, f"{spec.name}_{PROFILE}_reasoning_paper_items", floatfmt=".2f")
    for _, part in paper_table.groupby("id", sort=False):
        item = paper_items.set_index("id").loc[part["id"].iloc[0]]
        display(Markdown(f"### {item['source']}: {item['paper_level']} ambiguity\n\n{part['text'].iloc[0]}"))
        display(part[["method", *spec.classes, "source", "status", "reasoning"]].round(2))
else:
    print(f"the paper shows no reasoning examples for {spec.name}")

# %% [markdown]
# ## How often does the reasoning consider multiple interpretations?

# %%
counts = interpretation_counts(preds, items[items["split"] == "test"], spec.levels)
write_table(counts, RESULTS_DIR, f"{spec.name}_{PROFILE}_reasoning_multiple_interpretations", floatfmt=".3f")
counts.pivot(index="method", columns="ambiguity_level", values="share_multiple")[list(spec.levels)].round(3)
