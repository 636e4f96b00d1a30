"""Notebooks 01-06 under papermill on the generated MSP-Podcast corpus (real clips) with the tiny random
Qwen2.5-Omni thinker in speech+text mode: zero-shot, GRPO (2 CPU steps per method), Tables 1-2, the
per-level / per-class analysis with the sample inspector, reasoning; and the inspector plays the clip."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from shala_lib.data.loading import load
from shala_lib.data.specs import get_spec
from shala_lib.generation.predictions import read_predictions, sidecar_path
from shala_lib.pipeline.runner import NOTEBOOKS, Dirs, run_profile
from shala_lib.viz.widgets import SampleInspector


def test_sample_inspector_plays_the_clip(msp_speech, chaos):
    table = load("msp_podcast", data_dir=msp_speech)
    items = table[table["split"] == "test"]
    preds = pd.DataFrame({"id": items["id"], "pred": [None] * len(items), "status": "no_json", "raw_text": ""})
    insp = SampleInspector(items, {"shala": preds}, get_spec("msp_podcast"))
    first = insp.current_id
    data, fmt = insp.clip(first)
    assert data == Path(items.set_index("id").loc[first, "audio_path"]).read_bytes() and fmt == "wav"
    assert data[:4] == b"RIFF" and insp.audio.value == data and insp.audio.layout.display is None
    # a text dataset: no player
    chaos_items = chaos[chaos["split"] == "test"].head(3)
    text = SampleInspector(chaos_items, {}, get_spec("chaosnli"))
    assert text.clip(text.current_id) is None and text.audio.layout.display == "none"


@pytest.mark.slow
def test_notebooks_on_msp_speech_with_tiny_thinker(tmp_path, msp_speech, tiny_thinker):
    cfg = tmp_path / "msp_tiny.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "name": "msp_tiny",
                "dataset": "msp_podcast",
                "model": tiny_thinker,
                "data_dir": str(msp_speech),
                "structured_rollouts": True,
            }
        )
    )
    out = tmp_path / "out"
    params = tmp_path / "params"
    params.mkdir()
    trained = {
        "per_dataset": True,
        "DATASET": "{dataset}",
        "TRAIN_DIR": str(out / "train"),
        "RUN_PREFIX": "msp_tiny",
        "METHODS": ["mls", "shala"],
    }
    zero_shot_file = str(out / "zs" / "predictions_{dataset}_test_zero_shot_prefill.jsonl")
    (params / "s.yaml").write_text(
        yaml.safe_dump(
            {
                "datasets": ["msp_podcast"],
                "common": {"DATA_DIR": str(msp_speech), "PROCESSED_DIR": str(out / "processed")},
                "01_data_preparation": {"DATASETS": ["msp_podcast"]},
                "02_zero_shot_baselines": {
                    "DATASETS": ["msp_podcast"],
                    "MODEL": tiny_thinker,
                    "LIMIT": 4,
                    "BATCH_SIZE": 4,
                    "MAX_NEW_TOKENS": 8,
                    "OUT_DIR": str(out / "zs"),
                },
                "03_grpo_training": {
                    "per_dataset": True,
                    "CONFIG": str(cfg),
                    "METHODS": ["shala", "mls"],
                    "OUTPUT_DIR": str(out / "train"),
                    "GPUS": 0,
                },
                "04_evaluation": {**trained, "ZERO_SHOT_FILE": zero_shot_file, "N_BOOT": 20},
                "05_ambiguity_analysis": {**trained, "ZERO_SHOT_FILE": zero_shot_file},
                "06_reasoning_inspection": {
                    **trained,
                    "ZERO_SHOT_MODEL": tiny_thinker,
                    "N_COUNT_ITEMS": 3,
                    "MAX_NEW_TOKENS": 12,
                    "OUT_DIR": str(out / "reasoning"),
                },
            }
        )
    )
    dirs = Dirs(out / "runs", out / "results", out / "figures")
    written = run_profile("s", dirs=dirs, params_dir=params, progress=False)
    assert [p.name for p in written] == [f"{n}{'_msp_podcast' if n >= '03' else ''}.ipynb" for n in NOTEBOOKS]
    res = out / "results"
    # 02: the zero-shot rows heard the clips (speech+text), on 4 items with the data-only references
    zs = pd.read_csv(res / "zero_shot_msp_podcast_test.csv").set_index("method")
    assert {"zero_shot[paper]", "zero_shot[prefill]", "uniform", "constant_mean"} <= set(zs.index)
    assert (zs["n"] == 4).all()
    for opt in ("paper", "prefill"):
        meta = json.loads(sidecar_path(out / "zs" / f"predictions_msp_podcast_test_zero_shot_{opt}.jsonl").read_text())
        assert meta["fingerprint"]["modality"] == "speech+text" and meta["clips"]["n_clips"] == 4
    # 03: both methods trained 2 steps on speech+text, with the thinker
    for m in ("shala", "mls"):
        run = out / "train" / f"msp_tiny_{m}_smoke"
        eff = yaml.safe_load((run / "effective_config.yaml").read_text())
        assert eff["model"]["class"] == "Qwen2_5OmniThinkerForConditionalGeneration"
        assert eff["model"]["modality"] == "speech+text" and (run / "checkpoint-2").is_dir()
        meta = json.loads(sidecar_path(run / "predictions_test.jsonl").read_text())
        assert meta["fingerprint"]["modality"] == "speech+text"
    grpo = pd.read_csv(res / "grpo_msp_podcast_smoke_test.csv")
    assert grpo["method"].tolist() == ["shala", "mls"]
    # 04: Table 1 block for MSP-Podcast with every method, on the items all of them predicted
    t1 = pd.read_csv(res / "table1_msp_podcast_smoke_values.csv")
    assert t1["block"].unique().tolist() == ["MSP-Podcast"]
    assert {"zero_shot", "mls", "shala"} <= set(t1["method"])
    # 05: per-level and per-class figures and tables
    assert (out / "figures" / "fig2_msp_podcast_ambiguity_smoke.png").stat().st_size > 10_000
    assert (out / "figures" / "fig3_msp_podcast_per_class_smoke.png").stat().st_size > 10_000
    # 06: reasoning with the thinker hearing the clips
    ex = pd.read_csv(res / "msp_podcast_smoke_reasoning_examples.csv")
    assert set(ex["method"]) == {"human", "zero_shot", "mls", "shala"}
    reasoning = read_predictions(out / "reasoning" / "msp_podcast_smoke_reasoning_shala.jsonl")
    assert len(reasoning) > 0
    meta = json.loads(sidecar_path(out / "reasoning" / "msp_podcast_smoke_reasoning_shala.jsonl").read_text())
    assert meta["fingerprint"]["modality"] == "speech+text"
