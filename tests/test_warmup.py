import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shala_lib.data.loading import load
from shala_lib.data.specs import CHAOSNLI, GOEMOTIONS
from shala_lib.generation.models import load_model
from shala_lib.generation.parsing import parse_distribution
from shala_lib.generation.tiny import build_tiny_model
from shala_lib.training.warmup import format_warmup, target_json, warmup_dataset


def test_target_json_hand_cases():
    assert target_json([1 / 3] * 3, CHAOSNLI) == '{"entailment": 0.34, "neutral": 0.33, "contradiction": 0.33}'
    assert json.loads(target_json([0.04, 0.67, 0.29], CHAOSNLI)) == {
        "entailment": 0.04,
        "neutral": 0.67,
        "contradiction": 0.29,
    }


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.001, 1.0), min_size=7, max_size=7))
def test_target_json_sums_to_one_and_parses_back(w):
    p = np.asarray(w) / np.sum(w)
    text = target_json(p, GOEMOTIONS)
    vals = list(json.loads(text).values())
    assert sum(round(v * 100) for v in vals) == 100
    res = parse_distribution(text, GOEMOTIONS)
    assert res.status == "ok" and np.abs(res.dist - p).max() <= 0.0101


@pytest.mark.slow
def test_warmup_on_tiny_model(shared_data, tmp_path):
    df = load("chaosnli", data_dir=shared_data)
    ds = warmup_dataset(df, CHAOSNLI, limit=8)
    assert len(ds) == 8 and ds[0]["completion"][0]["role"] == "assistant"
    tiny = build_tiny_model(tmp_path / "tiny", (df["premise"] + " " + df["hypothesis"]).tolist()[:300])
    final = format_warmup(df, "chaosnli", tmp_path / "w", model=str(tiny), steps=2, batch_size=4, limit=8, use_cpu=True)
    model, tok = load_model(str(final), device="cpu")
    assert tok.padding_side == "left" and sum(p.numel() for p in model.parameters()) > 0
    assert (tmp_path / "w" / "warmup_log.csv").is_file()


def test_random_target_warmup_teaches_the_format_not_the_labels(chaos):
    """targets='random': each completion is a seeded flat-Dirichlet draw, unrelated to the item's
    human distribution; the same seed gives the same draws."""
    ds = warmup_dataset(chaos, CHAOSNLI, limit=200, targets="random", seed=3)
    drawn = np.array([list(json.loads(r["completion"][0]["content"]).values()) for r in ds])
    assert np.allclose(drawn.sum(axis=1), 1.0) and len(np.unique(drawn.round(2), axis=0)) > 150
    human = np.array(warmup_dataset(chaos, CHAOSNLI, limit=200, seed=3)["completion"], dtype=object)
    human = np.array([list(json.loads(r[0]["content"]).values()) for r in human])
    # unrelated to the labels: no better than chance at the majority class, far from the human rows
    assert (drawn.argmax(axis=1) == human.argmax(axis=1)).mean() < 0.5
    assert np.abs(drawn - human).sum(axis=1).mean() > 0.5
    again = warmup_dataset(chaos, CHAOSNLI, limit=200, targets="random", seed=3)
    assert again["completion"] == ds["completion"]
    with pytest.raises(ValueError, match="targets must be"):
        warmup_dataset(chaos, CHAOSNLI, limit=2, targets="labels")
