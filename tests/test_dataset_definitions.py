"""Dataset definition files: validation with errors naming file and key / line and column, the registry
built from definitions, downloads with checksums, the runner's data check, and the smoke profile run end to
end on two generated datasets given only as definition files (`--dataset`)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from shala_lib.data.definition import ENV, DefinitionError, read_definition, registry
from shala_lib.data.loading import DataFormatError, DataNotFoundError, load
from shala_lib.data.prompts import prompt_text
from shala_lib.data.specs import get_spec
from shala_lib.pipeline.runner import NOTEBOOKS, Dirs, main, run_profile
from shala_lib.scoring.methods import trained_methods

SARCASM = ["sincere", "ironic", "sarcastic", "unsure"]
TOPICS = ["billing", "bug", "feature", "praise", "spam"]


def _prompt(target: str) -> dict:
    return {"target": target, "task": "Say how annotators label it.", "label_word": "label"}


def write_long(folder: Path, n: int = 60, seed: int = 0) -> Path:
    """A long-format CSV (one row per rating, a rater column) and its definition: 4 classes, two text
    fields, entropy levels with their own edges."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        main_cls = SARCASM[i % 4]
        p = np.full(4, 0.1)
        p[i % 4] = 0.7
        p /= p.sum()
        for r in range(int(rng.integers(3, 7))):
            rows.append(
                {
                    "item": f"s{i:03d}",
                    "context": f"We waited {i % 7 + 1} hours for the {['bus', 'train', 'plane'][i % 3]}.",
                    "reply": f"Oh great, {main_cls} answer number {i}.",
                    "annotator": f"r{r}",
                    "judgement": str(rng.choice(SARCASM, p=p)),
                }
            )
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(folder / "sarcasm_ratings.csv", index=False)
    definition = {
        "name": "sarcasm_gen",
        "display_name": "Sarcasm (generated)",
        "classes": SARCASM,
        "aliases": {"sarcastic": ["sarcasm"]},
        "text_fields": ["context", "reply"],
        "ambiguity": {"scheme": "entropy", "bins": [0.3, 0.7]},
        "split": {"fractions": [0.6, 0.2, 0.2]},
        "data": {"path": "sarcasm_ratings.csv", "id": "item", "label": "judgement", "rater": "annotator"},
        "prompt": {
            **_prompt("Context: {context}\nReply: {reply}"),
            "task": "Is the reply sincere, ironic, sarcastic, or are annotators unsure?",
        },
    }
    path = folder / "sarcasm_gen.yaml"
    path.write_text(yaml.safe_dump(definition, sort_keys=False))
    return path


def write_wide(folder: Path, n: int = 60, seed: int = 1) -> Path:
    """A wide JSONL (count columns named unlike the classes) and its definition: 5 classes, two text
    fields, active-label levels, published reference rows."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "tickets.jsonl", "w") as fh:
        for i in range(n):
            counts = np.zeros(5, int)
            counts[i % 5] = int(rng.integers(2, 6))
            for k in rng.choice(5, int(rng.integers(0, 3)), replace=False):
                counts[k] += 1
            rec = {"ticket": f"t{i:03d}", "title": f"Ticket {i}", "body": f"About {TOPICS[i % 5]} issue {i}."}
            rec.update({f"n_{c}": int(v) for c, v in zip(TOPICS, counts)})
            fh.write(json.dumps(rec) + "\n")
    definition = {
        "name": "tickets_gen",
        "classes": TOPICS,
        "text_fields": ["title", "body"],
        "ambiguity": {"scheme": "active_labels"},
        "data": {"path": "tickets.jsonl", "id": "ticket", "counts": {c: f"n_{c}" for c in TOPICS}},
        "prompt": _prompt("Title: {title}\nBody: {body}"),
        "published": [{"method": "Reference model", "source": "made up for the test", "jsd": 0.5}],
    }
    path = folder / "tickets_gen.yaml"
    path.write_text(yaml.safe_dump(definition, sort_keys=False))
    return path


# --- the registry and the paper's datasets as definitions --------------------------------------------
def test_registry_is_built_from_definitions():
    reg = registry()
    assert {"chaosnli", "goemotions", "msp_podcast", "triage_probe"} <= set(reg)
    chaos = reg["chaosnli"]
    assert chaos.source.name == "chaosnli.yaml" and chaos.loader == "shala_lib.data.loaders.chaosnli:load_chaosnli"
    assert chaos.spec.subsets == ("snli", "mnli") and chaos.spec.entropy_bins == (0.33, 0.66)
    assert reg["msp_podcast"].spec.modality == "speech+text" and reg["msp_podcast"].manual
    item = {"premise": "A man sleeps.", "hypothesis": "A man rests."}
    text = prompt_text(get_spec("chaosnli"), item)  # the paper's Table 11 prompt, from the YAML
    assert text.startswith("Premise: A man sleeps.\nHypothesis: A man rests.\n\nGiven a premise and a hypothesis")
    assert "1. entailment: the hypothesis logically follows from the premise" in text
    url = reg["chaosnli"].download[0].url
    assert url.endswith("chaosNLI_v1.0.zip?dl=1") and all(rf.sha256 for rf in reg["chaosnli"].download)


def test_definition_by_path_and_by_registered_name(tmp_path, monkeypatch):
    path = write_long(tmp_path / "d")
    path.write_text(path.read_text().replace("name: sarcasm_gen", "name: sarcasm_by_path"))
    with pytest.raises(KeyError, match="unknown dataset 'sarcasm_by_path'"):
        get_spec("sarcasm_by_path")  # neither registered nor read yet
    df = load(str(path))
    assert df["dataset"].unique().tolist() == ["sarcasm_by_path"] and len(df) == 60
    assert set(df["ambiguity_level"]) <= {"low", "medium", "high"}
    assert df["split"].value_counts().to_dict() == {"train": 36, "validation": 12, "test": 12}
    # entropy edges from the definition: levels recomputed by hand
    h = df["entropy_norm"].to_numpy()
    assert (df["ambiguity_level"] == np.where(h < 0.3, "low", np.where(h < 0.7, "medium", "high"))).all()
    # once read by path, the name resolves in this process (Table 2's published rows look it up by name)
    assert get_spec("sarcasm_by_path").source == str(path.resolve())
    monkeypatch.setenv(ENV, str(path))  # registered: resolvable by name in kernels and subprocesses too
    assert load("sarcasm_by_path")["counts"].tolist() == df["counts"].tolist()


def test_wide_definition_with_renamed_count_columns(tmp_path):
    df = load(str(write_wide(tmp_path / "w")))
    assert len(df) == 60 and set(df["ambiguity_level"]) <= {"1", "2", "3", "4+"}
    first = df.set_index("id").loc["t000"]
    raw = json.loads((tmp_path / "w" / "tickets.jsonl").read_text().splitlines()[0])
    assert first["counts"] == [float(raw[f"n_{c}"]) for c in TOPICS] and first["majority"] == "billing"


# --- validation: file and key, line and column --------------------------------------------------------
def _bad(tmp_path: Path, **changes) -> Path:
    doc = yaml.safe_load(write_long(tmp_path / "v").read_text())
    for k, v in changes.items():
        if v is None:
            doc.pop(k)
        else:
            doc[k] = v
    path = tmp_path / "v" / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize(
    ("changes", "key", "message"),
    [
        ({"classes": ["only"]}, "classes", "needs at least 2 classes"),
        (
            {"prompt": _prompt("Context: {context}\nTweet: {tweet}")},
            "prompt.target",
            r"\['tweet'\] are not text fields",
        ),
        ({"prompt_keys": {"sincere": "S", "ironic": "I", "sarcastic": "X"}}, "prompt_keys", r"\['unsure'\] missing"),
        ({"labels": ["a"]}, "labels", "unknown key"),
        ({"data": None}, "data", "exactly one of data"),
        ({"ambiguity": {"scheme": "entropy", "bins": [0.8, 0.2]}}, "ambiguity.bins", "increasing"),
        ({"split": {"fractions": [0.5, 0.2]}}, "split.fractions", "summing to 1"),
    ],
)
def test_definition_errors_name_file_and_key(tmp_path, changes, key, message):
    path = _bad(tmp_path, **changes)
    with pytest.raises(DefinitionError, match=rf"bad.yaml: key '{key}': .*{message}"):
        read_definition(path)


def _data(tmp_path: Path, rows: list[dict], empty_text: str = "error", fmt: str = "csv") -> Path:
    doc = yaml.safe_load(write_long(tmp_path / "e").read_text())
    doc["data"]["empty_text"] = empty_text
    if rows:
        pd.DataFrame(rows).to_csv(tmp_path / "e" / "sarcasm_ratings.csv", index=False)
    else:
        (tmp_path / "e" / "sarcasm_ratings.csv").write_text("")
    path = tmp_path / "e" / "def.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _row(item: str, judgement: str = "ironic", context: str = "c", rater: str = "r1") -> dict:
    return {"item": item, "context": context, "reply": "r", "annotator": rater, "judgement": judgement}


def test_data_errors_name_line_and_column(tmp_path):
    with pytest.raises(DataFormatError, match=r"sarcasm_ratings.csv, line 3, field 'judgement': unknown class 'angry'"):
        load(str(_data(tmp_path, [_row("a"), _row("a", "angry", rater="r2")])))
    with pytest.raises(
        DataFormatError, match=r"line 4, field 'context': id 'a' has different context on lines 2 and 4"
    ):
        load(str(_data(tmp_path, [_row("a"), _row("b"), _row("a", context="other", rater="r2")])))
    with pytest.raises(DataFormatError, match=r"line 3, field 'context': empty text"):
        load(str(_data(tmp_path, [_row("a"), _row("b", context="  ")])))
    with pytest.raises(DataFormatError, match="sarcasm_ratings.csv: the file is empty"):
        load(str(_data(tmp_path, [])))
    df = load(str(_data(tmp_path, [_row("a"), _row("b", context=""), _row("c"), _row("d")], empty_text="skip")))
    assert sorted(df["id"]) == ["a", "c", "d"] and df.attrs["skipped"] == {"item with an empty context": 1}
    # "sarcasm" is an alias of sarcastic; the same rater giving the same label twice counts once, reported
    df = load(str(_data(tmp_path, [_row("a", "sarcasm"), _row("a", "sarcasm"), _row("b"), _row("c")])))
    assert df.set_index("id").loc["a", "counts"] == [0.0, 0.0, 1.0, 0.0]
    assert df.attrs["skipped"] == {"exact repeat of a rating (same item, rater and label; counted once)": 1}


def test_wide_zero_rating_item_is_an_error(tmp_path):
    path = write_wide(tmp_path / "z")
    lines = (tmp_path / "z" / "tickets.jsonl").read_text().splitlines()
    rec = json.loads(lines[4])
    rec.update({f"n_{c}": 0 for c in TOPICS})
    lines[4] = json.dumps(rec)
    (tmp_path / "z" / "tickets.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"tickets.jsonl, line 5, field 'n_billing, .*': item with zero ratings"):
        load(str(path))


# --- downloads and the runner's data check ---------------------------------------------------------------
def test_chaosnli_download_verifies_archive_and_checksums(tmp_path, monkeypatch, shared_data):
    from shala_lib.data import download as dl

    def html(url, dest):
        dest.write_bytes(b"<!DOCTYPE html><html>Dropbox sign-in page</html>")

    monkeypatch.setattr(dl, "_fetch", html)
    with pytest.raises(DataNotFoundError, match=r"is not a zip archive .*b'<!DOCTYPE html>"):
        dl.download("chaosnli", tmp_path)

    def zipped(members):
        def fetch(url, dest):
            assert url.endswith("?dl=1")
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as zf:
                for name, data in members.items():
                    zf.writestr(f"chaosNLI_v1.0/{name}", data)
            dest.write_bytes(buf.getvalue())

        return fetch

    real = {n: (shared_data / "chaosnli" / n).read_bytes() for n in ("chaosNLI_snli.jsonl", "chaosNLI_mnli_m.jsonl")}
    monkeypatch.setattr(dl, "_fetch", zipped({**real, "chaosNLI_snli.jsonl": b'{"uid": "tampered"}\n'}))
    with pytest.raises(DataNotFoundError, match="checksum mismatch for chaosNLI_v1.0/chaosNLI_snli.jsonl"):
        dl.download("chaosnli", tmp_path / "t")
    assert not (tmp_path / "t" / "chaosnli" / "chaosNLI_snli.jsonl").exists()
    monkeypatch.setattr(dl, "_fetch", zipped(real))
    got = dl.download("chaosnli", tmp_path / "ok")  # the published files pass the recorded sha256
    assert [p.read_bytes() for p in got] == [real["chaosNLI_snli.jsonl"], real["chaosNLI_mnli_m.jsonl"]]


def test_runner_exits_nonzero_naming_absent_data(tmp_path, monkeypatch, capsys):
    from shala_lib.data import download as dl

    def offline(url, dest):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(dl, "_fetch", offline)
    monkeypatch.setenv("SHALA_DATA_DIR", str(tmp_path / "empty"))
    args = ["--profile", "smoke", "--no-progress", "--runs-dir", str(tmp_path / "r"), "--results-dir", str(tmp_path)]
    assert main([*args, "--figures-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "chaosnli: missing" in err and "download failed: could not download" in err
    assert "python -m shala_lib.data.download chaosnli --data-dir" in err
    assert not (tmp_path / "r" / "01_data_preparation.ipynb").exists()  # nothing ran
    assert main([*args, "--figures-dir", str(tmp_path), "--no-download"]) == 2
    assert "the runner did not try: --no-download" in capsys.readouterr().err


# --- the smoke profile on your own data --------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("writer", [write_long, write_wide], ids=["long_4_classes", "wide_5_classes"])
def test_smoke_profile_on_a_definition_file(writer, tmp_path, tiny, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    path = writer(tmp_path / "def")
    d = read_definition(path)
    name, spec = d.name, d.spec
    out = tmp_path / "out"
    dirs = Dirs(out / "runs", out / "results", out / "figures")
    # the long case runs every notebook; the wide case 01-04 (its format and 5 classes meet the loader,
    # training and the tables there; 05-06 read the same prepared table and predictions)
    only = list(NOTEBOOKS) if writer is write_long else list(NOTEBOOKS[:4])
    written = run_profile("smoke", only, dirs=dirs, progress=False, datasets=[str(path)], model=tiny)
    assert [p.name for p in written] == [f"{n}{'_' + name if n >= '03' else ''}.ipynb" for n in only]
    res = out / "results"
    assert pd.read_csv(res / f"{name}_stats_by_majority.csv")["count"].sum() == 60
    zs = pd.read_csv(res / f"zero_shot_{name}_test.csv").set_index("method")
    assert {"zero_shot[paper]", "zero_shot[prefill]", "uniform", "constant_mean"} <= set(zs.index)
    grpo = pd.read_csv(res / f"grpo_{name}_smoke_test.csv")
    assert grpo["method"].tolist() == list(trained_methods())  # notebook 03 trains the registry's methods in order
    run = out / "runs" / "train" / f"{name}_smollm2_shala_shala_smoke"
    eff = yaml.safe_load((run / "effective_config.yaml").read_text())
    assert eff["experiment"]["dataset"] == name and eff["experiment"]["model"] == tiny
    assert eff["grpo_effective"]["max_steps"] == 2
    t1 = pd.read_csv(res / f"table1_{name}_smoke_values.csv")
    assert t1["block"].unique().tolist() == [spec.display_name]
    assert {"zero_shot", "mls", "shala_no_ambi", "shala"} <= set(t1["method"])
    t2 = pd.read_csv(res / f"table2_{name}_smoke.csv")
    if d.published:
        assert "Reference model" in set(t2["method"]) and {"published", "ours"} == set(t2["origin"])
    if writer is write_wide:
        return
    levels = pd.read_csv(res / f"{name}_smoke_metrics_by_ambiguity.csv")
    assert set(levels["group"]) - {"all"} <= set(spec.levels)
    by_class = pd.read_csv(res / f"{name}_smoke_metrics_by_class.csv")
    assert set(by_class["group"]) - {"all"} <= set(spec.classes)
    for fig in (f"fig2_{name}_ambiguity_smoke.png", f"fig3_{name}_per_class_smoke.png"):
        assert (out / "figures" / fig).stat().st_size > 10_000
    ex = pd.read_csv(res / f"{name}_smoke_reasoning_examples.csv")
    assert {"human", "zero_shot", "shala"} <= set(ex["method"])


def test_training_takes_a_definition_path(tmp_path, tiny, monkeypatch):
    """`--set dataset=path/to/def.yaml`: GRPO and the test evaluation on a dataset known only by its file."""
    from shala_lib.train import main as train_main
    from shala_lib.training.config import ExperimentConfig

    monkeypatch.delenv(ENV, raising=False)
    path = write_wide(tmp_path / "def")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"name": "t", "model": tiny, "prefill": True, "device": "cpu", "report_to": []}))
    sets = [f"dataset={path}", f"output_dir={tmp_path / 'runs'}", "max_train_items=8", "max_eval_items=4"]
    sets += [
        "prompts_per_step=2",
        "grpo.max_steps=1",
        "grpo.max_completion_length=8",
        "grpo.per_device_train_batch_size=8",
    ]
    assert train_main([str(cfg), "--set", *sets]) == 0
    run = tmp_path / "runs" / "t"
    assert json.loads((run / "metrics_test.json").read_text())["n"] == 4
    preds = pd.read_json(run / "predictions_test.jsonl", lines=True)
    assert preds["raw_text"].notna().all() and preds["prefill"].iloc[0] == '{"billing": '
    assert ExperimentConfig.from_yaml(run / "experiment.yaml").dataset == str(path)
