import json

import numpy as np
import pandas as pd
import pytest

from shala_lib.data.loading import DataFormatError, DataNotFoundError, load, write_parquet
from shala_lib.data.stats import ambiguity_stats, majority_stats, split_stats
from tests.fixtures import random_goemotions, write_goemotions_raw, write_msp

CANON = [
    "id",
    "dataset",
    "subset",
    "counts",
    "dist",
    "n_annotators",
    "majority",
    "entropy_norm",
    "n_active",
    "ambiguity_level",
    "split",
]


def test_chaosnli_paper_tables_5_and_8(shared_data):
    from shala_lib.data.stats import stats_vs_paper

    df = load("chaosnli", data_dir=shared_data)
    assert len(df) == 3113 and set(CANON) <= set(df.columns) and {"premise", "hypothesis"} <= set(df.columns)
    vs = stats_vs_paper(df)  # every row of the stored Tables 5 and 8, exact
    assert sorted(set(vs["table"])) == [5, 8] and len(vs) == 18
    assert (vs["count_diff"] == 0).all(), vs[vs["count_diff"] != 0]
    maj = majority_stats(df).set_index(["dataset", "majority_label"])["count"]
    assert maj["ChaosNLI"].tolist() == [1168, 1397, 548]
    assert maj["ChaosNLI-S"].tolist() == [424, 811, 279]
    assert maj["ChaosNLI-M"].tolist() == [744, 586, 269]
    amb = ambiguity_stats(df).set_index(["dataset", "ambiguity_level"])["count"]
    assert amb["ChaosNLI"].tolist() == [377, 1493, 1243]
    assert amb["ChaosNLI-S"].tolist() == [327, 865, 322]
    assert amb["ChaosNLI-M"].tolist() == [50, 628, 921]
    assert (df["n_annotators"] == 100).all()


@pytest.mark.parametrize(("dataset", "tables"), [("goemotions", [7, 10]), ("msp_podcast", [6, 9])])
def test_paper_tables_6_7_9_10_when_the_full_data_is_present(shared_data, dataset, tables):
    """GoEmotions (all raw rater files) and MSP-Podcast (licensed) against the paper's Tables 6/9 and
    7/10: counts exact, mean normalized entropy to the paper's 4 decimals. Skipped where the files
    are absent (here: GoEmotions has only a raw prefix, MSP-Podcast is not distributed)."""
    from shala_lib.data.stats import stats_vs_paper

    raw = [*(shared_data / "goemotions").glob("goemotions_*.csv"), *(shared_data / "goemotions" / "raw").glob("*.csv")]
    if dataset == "goemotions" and len(raw) < 3:  # the paper used all three raw files
        pytest.skip(f"goemotions: {len(raw)} of the 3 raw rater files under {shared_data / 'goemotions'}")
    try:
        df = load(dataset, data_dir=shared_data)
    except DataNotFoundError as err:
        pytest.skip(f"{dataset}: full data absent under {shared_data} ({str(err).splitlines()[0][:160]})")
    vs = stats_vs_paper(df)
    assert sorted(set(vs["table"])) == tables
    assert (vs["count_diff"] == 0).all(), vs[vs["count_diff"] != 0]
    amb = vs[vs["grouping"] == "ambiguity"]
    assert np.allclose(amb["mean_entropy"], amb["paper_mean_entropy"], atol=5e-5), amb


def test_chaosnli_known_item(shared_data):
    df = load("chaosnli", subset="snli", data_dir=shared_data).set_index("id")
    row = df.loc["2407214681.jpg#0r1n"]
    assert row["counts"] == [30.0, 70.0, 0.0]
    assert row["dist"] == [0.3, 0.7, 0.0]
    assert row["majority"] == "neutral" and row["n_active"] == 2
    assert row["entropy_norm"] == pytest.approx(0.8812908992306927 / np.log2(3))


def test_chaosnli_splits_deterministic_disjoint_and_sized(shared_data, tmp_path):
    a = load("chaosnli", data_dir=shared_data, seed=7)
    b = load("chaosnli", data_dir=shared_data, seed=7)
    c = load("chaosnli", data_dir=shared_data, seed=8)
    assert a["split"].tolist() == b["split"].tolist()
    assert a["split"].tolist() != c["split"].tolist()
    sizes = split_stats(a)["total"]
    # within each part: round(.65 n), round(.15 n), rest -> snli 984/227/303, mnli 1039/240/320
    assert sizes.tolist() == [984 + 1039, 227 + 240, 303 + 320]
    ids = {s: set(a.loc[a["split"] == s, "id"]) for s in ("train", "validation", "test")}
    assert not (ids["train"] & ids["test"]) and not (ids["train"] & ids["validation"])
    assert not (ids["validation"] & ids["test"])
    snli = load("chaosnli", subset="snli", data_dir=shared_data, seed=7).set_index("id")["split"]
    assert (a.set_index("id").loc[snli.index, "split"] == snli).all()
    p1, p2 = write_parquet(a, tmp_path / "a.parquet"), write_parquet(b, tmp_path / "b.parquet")
    assert p1.read_bytes() == p2.read_bytes()
    back = pd.read_parquet(p1)
    assert back["id"].tolist() == a["id"].tolist()
    assert np.allclose(np.stack(back["dist"].to_numpy()), np.asarray(a["dist"].tolist()))


def _chaos_dir(tmp_path, lines):
    (tmp_path / "chaosnli").mkdir()
    (tmp_path / "chaosnli" / "chaosNLI_snli.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path


def _rec(uid="a", counts=(1, 2, 3), **over):
    r = {"uid": uid, "label_count": list(counts), "example": {"premise": "p", "hypothesis": "h"}}
    r.update(over)
    return json.dumps(r)


@pytest.mark.parametrize(
    "lines, match",
    [
        ([_rec(), "{not json"], r"chaosNLI_snli.jsonl, line 2: malformed JSON"),
        ([_rec(), json.dumps({"uid": "b", "example": {}})], r"line 2, field 'label_count'"),
        ([_rec(counts=(0, 0, 0))], r"line 1, field 'label_count': item with zero ratings"),
        ([_rec(counts=(1, -2, 3))], r"line 1, field 'label_count': negative"),
        ([_rec(example={"premise": "p"})], r"line 1, field 'example.hypothesis'"),
    ],
)
def test_chaosnli_bad_input(tmp_path, lines, match):
    root = _chaos_dir(tmp_path, lines)
    with pytest.raises(DataFormatError, match=match):
        load("chaosnli", subset="snli", data_dir=root)


def test_missing_data_says_what_to_download(tmp_path):
    with pytest.raises(DataNotFoundError, match="dropbox.com/s/h4j7dqszmpt2679"):
        load("chaosnli", data_dir=tmp_path)
    with pytest.raises(DataNotFoundError, match="goemotions_1.csv"):
        load("goemotions", data_dir=tmp_path)
    with pytest.raises(DataNotFoundError, match="licensed"):
        load("msp_podcast", data_dir=tmp_path)


def test_goemotions_aggregation_by_hand(tmp_path):
    (tmp_path / "goemotions").mkdir()
    write_goemotions_raw(
        tmp_path / "goemotions" / "goemotions_1.csv",
        {
            # rater 0 ticks joy+admiration (both joy -> counts once), rater 1 anger, rater 2 surprise+anger
            "a": [["joy", "admiration"], ["annoyance"], ["curiosity", "anger"]],
            # 3 raters but one ticked nothing and one flagged unclear -> 1 valid -> dropped
            "b": [["joy"], [], ["fear"]],
            "c": [["neutral"], ["neutral"], ["neutral"], ["grief"]],
        },
        unclear={("b", 2)},
    )
    df = load("goemotions", data_dir=tmp_path, per_class=None).set_index("id")
    assert sorted(df.index) == ["a", "c"]
    # classes: anger, disgust, fear, joy, sadness, surprise, neutral
    assert df.loc["a", "counts"] == [2, 0, 0, 1, 0, 1, 0]
    assert df.loc["a", "n_annotators"] == 3 and df.loc["a", "majority"] == "anger"
    assert df.loc["a", "ambiguity_level"] == "3"
    assert df.loc["c", "dist"] == [0, 0, 0, 0, 0.25, 0, 0.75]
    assert df.loc["c", "ambiguity_level"] == "2"
    skipped = load("goemotions", data_dir=tmp_path, per_class=None).attrs["skipped"]
    assert skipped == {
        "item with fewer than 3 valid raters": 1,
        "rater flagged example_very_unclear": 1,
        "rater ticked no emotion": 1,
    }
    split = load("goemotions", data_dir=tmp_path, per_class=None, multi_label="split").set_index("id")
    assert split.loc["a", "counts"] == [1.5, 0, 0, 1, 0, 0.5, 0]


def test_goemotions_balanced_sampling_and_split(tmp_path):
    (tmp_path / "goemotions").mkdir()
    random_goemotions(tmp_path / "goemotions" / "goemotions_1.csv", 600, seed=3)
    full = load("goemotions", data_dir=tmp_path, per_class=None)
    capped = load("goemotions", data_dir=tmp_path, per_class=20)
    assert capped["majority"].value_counts().max() <= 20
    for cls, n in full["majority"].value_counts().items():
        assert (capped["majority"] == cls).sum() == min(n, 20)
    sizes = capped["split"].value_counts()
    n = len(capped)
    assert sizes["train"] == round(0.7 * n) and sizes["validation"] == round(0.15 * n)
    assert load("goemotions", data_dir=tmp_path, per_class=20)["id"].tolist() == capped["id"].tolist()


def test_goemotions_real_raw_schema(shared_data):
    """The real raw prefix parses (schema, True/False flags); its comments have <= 2 raters each."""
    raw = shared_data / "goemotions" / "raw_partial" / "goemotions_1.head_partial.csv"
    df = load("goemotions", data_dir=shared_data, files=[raw], min_raters=1, per_class=None)
    assert df["n_annotators"].max() <= 2
    assert df.attrs["skipped"]["rater flagged example_very_unclear"] == 58
    assert len(load("goemotions", data_dir=shared_data, files=[raw], per_class=None)) == 0


def test_goemotions_bad_value(tmp_path):
    p = write_goemotions_raw(tmp_path / "g.csv", {"a": [["joy"]]})
    text = p.read_text().replace(",1,0,0,0,0,0,0,0,0,0,0\n", ",7,0,0,0,0,0,0,0,0,0,0\n")
    p.write_text(text)
    with pytest.raises(DataFormatError, match=r"g.csv, line 2, field 'joy': expected 0 or 1"):
        load("goemotions", data_dir=tmp_path, files=[p])


def test_msp_podcast_fixture(tmp_path):
    ratings = {f"MSP_{i:04d}.wav": ["Happy", "Happy", "Neutral", "Sad", "Angry"][: 3 + i % 3] for i in range(20)}
    ratings["MSP_9998.wav"] = ["Happy", "Other-Frustrated", "Neutral"]
    ratings["MSP_9999.wav"] = ["Contempt", "Contempt", "Disgust", "Fear", "Surprise"]
    write_msp(tmp_path, ratings)
    df = load("msp_podcast", data_dir=tmp_path, seed=1)
    assert "MSP_9998.wav" not in set(df["id"])
    assert df.attrs["skipped"] == {"item with a rating outside the 8 classes": 1}
    row = df.set_index("id").loc["MSP_9999.wav"]
    # angry, contempt, disgust, fear, happy, neutral, sad, surprise
    assert row["counts"] == [0, 2, 1, 1, 0, 0, 0, 1] and row["ambiguity_level"] == "4+"
    assert row["text"] == "words of MSP_9999.wav" and row["audio_path"].endswith("Audios/MSP_9999.wav")
    assert df["split"].value_counts().to_dict() == {"train": 13, "validation": 4, "test": 4}
    assert sorted(df["fold"].value_counts().tolist()) == [4, 4, 4, 4, 5]
    keep = load("msp_podcast", data_dir=tmp_path, other_policy="drop_rating").set_index("id")
    assert keep.loc["MSP_9998.wav", "counts"] == [0, 0, 0, 0, 1, 1, 0, 0]


def test_msp_malformed_detail(tmp_path):
    folder = write_msp(tmp_path, {"a.wav": ["Happy"]})
    (folder / "Labels" / "labels_detailed.csv").write_text('FileName,EmoDetail\na.wav,"WORKER1"\n')
    with pytest.raises(DataFormatError, match=r"labels_detailed.csv, line 2, field 'EmoDetail'"):
        load("msp_podcast", data_dir=tmp_path)


def test_custom_long_and_wide_agree(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.choice(["pos", "neg", "neu"], size=(30, 5))
    long = pd.DataFrame([{"id": f"i{i}", "text": f"t{i}", "label": lab} for i in range(30) for lab in labels[i]])
    long.to_csv(tmp_path / "long.csv", index=False)
    wide = pd.DataFrame(
        {
            "id": [f"i{i}" for i in range(30)],
            "text": [f"t{i}" for i in range(30)],
            **{c: (labels == c).sum(axis=1) for c in ["pos", "neg", "neu"]},
        }
    )
    wide.to_json(tmp_path / "wide.jsonl", orient="records", lines=True)
    wide.to_parquet(tmp_path / "wide.parquet")
    a = load("custom", path=tmp_path / "long.csv", classes=["pos", "neg", "neu"], seed=1)
    b = load("custom", path=tmp_path / "wide.jsonl", classes=["pos", "neg", "neu"], seed=1)
    c = load("custom", path=tmp_path / "wide.parquet", classes=["pos", "neg", "neu"], seed=1)
    for other in (b, c):
        assert a["id"].tolist() == other["id"].tolist()
        assert a["counts"].tolist() == other["counts"].tolist()
        assert a["split"].tolist() == other["split"].tolist()
    assert (a["n_annotators"] == 5).all()


def test_custom_bad_inputs(tmp_path):
    pd.DataFrame({"id": ["a", "b"], "text": ["x", "y"], "label": ["pos", "bad"]}).to_csv(
        tmp_path / "l.csv", index=False
    )
    with pytest.raises(DataFormatError, match=r"l.csv, line 3, field 'label': unknown class 'bad'"):
        load("custom", path=tmp_path / "l.csv", classes=["pos", "neg"])
    pd.DataFrame({"id": ["a"], "text": ["x"], "pos": [0], "neg": [0]}).to_csv(tmp_path / "w.csv", index=False)
    with pytest.raises(DataFormatError, match="zero ratings"):
        load("custom", path=tmp_path / "w.csv", classes=["pos", "neg"])
    pd.DataFrame({"id": ["a"], "label": ["pos"]}).to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(DataFormatError, match="field 'text'"):
        load("custom", path=tmp_path / "m.csv", classes=["pos", "neg"])
    (tmp_path / "j.jsonl").write_text('{"id": "a", "text": "x", "label": "pos"}\n{oops\n')
    with pytest.raises(DataFormatError, match=r"j.jsonl, line 2: malformed JSON"):
        load("custom", path=tmp_path / "j.jsonl", classes=["pos", "neg"])


def test_download_offline_error_and_skip_when_present(tmp_path, monkeypatch, shared_data):
    import urllib.request

    from shala_lib.data import download as dl

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataNotFoundError, match=r"could not download https://www.dropbox.com/.*place chaosNLI_v1.0/"):
        dl.download("chaosnli", tmp_path)
    # files already present are verified and skipped: no network needed
    (tmp_path / "chaosnli").mkdir(exist_ok=True)
    for f in ("chaosNLI_snli.jsonl", "chaosNLI_mnli_m.jsonl"):
        (tmp_path / "chaosnli" / f).write_bytes((shared_data / "chaosnli" / f).read_bytes())
    assert [p.name for p in dl.download("chaosnli", tmp_path)] == ["chaosNLI_snli.jsonl", "chaosNLI_mnli_m.jsonl"]
    with pytest.raises(DataNotFoundError, match="licensed"):
        dl.download("msp_podcast", tmp_path)


def test_first_items_takes_each_level_in_turn_and_is_prefix_stable():
    from shala_lib.data.loading import first_items

    items = pd.DataFrame(
        {"id": list("abcdefg"), "ambiguity_level": ["medium", "medium", "high", "medium", "low", "high", "medium"]}
    )
    assert first_items(items, 5)["id"].tolist() == ["c", "e", "a", "f", "b"]  # high, low, medium; then round 2
    assert first_items(items, 7)["id"].tolist() == ["c", "e", "a", "f", "b", "d", "g"]
    for n in range(8):
        assert first_items(items, n)["id"].tolist() == first_items(items, 7)["id"].tolist()[:n]
    assert first_items(items, None) is items
    with pytest.raises(ValueError, match="n must be >= 0"):
        first_items(items, -1)
    # several subsets (ChaosNLI's SNLI and MNLI): levels are crossed with subsets, so both get items
    two = items.assign(subset=["mnli", "mnli", "mnli", "mnli", "snli", "snli", "snli"])
    assert first_items(two, 4)["id"].tolist() == ["c", "a", "f", "e"]  # mnli high/medium, snli high/low
    assert first_items(two.assign(subset="mnli"), 5)["id"].tolist() == ["c", "e", "a", "f", "b"]  # one subset


def test_sixteen_chaosnli_test_items_cover_both_subsets_and_every_level(chaos):
    from shala_lib.data.loading import first_items

    picked = first_items(chaos[chaos["split"] == "test"], 16)
    # 6 (subset, level) groups: two full rounds, then mnli x 3 levels and snli high
    assert picked["subset"].value_counts().to_dict() == {"mnli": 9, "snli": 7}
    assert picked.groupby("subset")["ambiguity_level"].nunique().to_dict() == {"mnli": 3, "snli": 3}
