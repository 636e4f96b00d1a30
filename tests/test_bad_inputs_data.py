"""Issue 21, the data surface: bad dataset definitions and bad data files are errors naming the file and
the key path / line and column, never silently wrong; valid but tricky inputs give exactly the right table.
Every case writes a small file to tmp_path (generated here)."""

from __future__ import annotations

import ast
import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from shala_lib.data.definition import DefinitionError, parse_definition, read_definition, registry
from shala_lib.data.loaders.generic import REPEAT
from shala_lib.data.loading import DataFormatError, load
from shala_lib.files import load_yaml

CLASSES = ["joy", "sadness", "anger"]


def base_doc() -> dict[str, Any]:
    """A valid long-format definition: item / label / rater columns, one text field."""
    return {
        "name": "bad_inputs",
        "classes": list(CLASSES),
        "text_fields": ["text"],
        "data": {"path": "d.csv", "id": "item", "label": "label", "rater": "rater"},
        "prompt": {"target": "Text: {text}", "task": "Which emotion do annotators see?"},
    }


def write_def(folder: Path, doc: dict[str, Any] | str, name: str = "def.yaml") -> Path:
    path = folder / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return path


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change to the base definition: `a.b` set to value (None removes the key)."""

    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = doc
        for p in parents:
            node = node.setdefault(p, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value

    return change


def _all(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        for c in changes:
            c(doc)

    return change


def _text_field(name: str) -> Callable[[dict[str, Any]], None]:
    return _set("text_fields", ["text", name])


WIDE = _all(_set("data", {"path": "d.csv", "id": "item", "counts": {c: f"n_{c}" for c in CLASSES}}))
RESERVED = ["majority", "id", "split", "counts", "dataset", "dist", "subset", "n_annotators", "entropy_norm"]
RESERVED += ["n_active", "ambiguity_level", "audio_path"]

# (case id, change to the base definition, key path named, message)
DEFINITION_CASES: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    *[(f"text_field_{r}", _text_field(r), "text_fields[1]", "a column the workbench writes") for r in RESERVED],
    ("text_field_is_label_column", _text_field("label"), "text_fields[1]", "data.label column"),
    ("text_field_is_rater_column", _text_field("rater"), "text_fields[1]", "data.rater column"),
    ("text_field_is_count_column", _all(WIDE, _text_field("n_joy")), "text_fields[1]", "data.counts.joy column"),
    ("text_fields_empty", _set("text_fields", []), "text_fields", "at least 1 item"),
    ("text_fields_twice", _set("text_fields", ["text", "text"]), "text_fields[1]", "listed twice"),
    ("classes_case", _set("classes", ["joy", "Joy", "anger"]), "classes", "'joy' and 'Joy' are the same class"),
    ("classes_whitespace", _set("classes", ["joy", " sadness", "anger"]), "classes[1]", "surrounding whitespace"),
    ("classes_nfc_nfd", _set("classes", ["caf\u00e9", "cafe\u0301"]), "classes", "the same class"),
    ("classes_separator", _set("classes", ["very_bad", "very bad"]), "classes", "the same class"),
    ("classes_one", _set("classes", ["joy"]), "classes", "needs at least 2 classes"),
    ("classes_not_text", _set("classes", ["joy", 1]), "classes[1]", "must be a string, got 1"),
    (
        "alias_two_classes",
        _set("aliases", {"joy": ["glad"], "sadness": ["Glad"]}),
        "aliases.sadness",
        "'Glad' is already an alias of 'joy'",
    ),
    (
        "alias_nfd_two_classes",
        _set("aliases", {"joy": ["na\u00efve"], "sadness": ["nai\u0308ve"]}),
        "aliases.sadness",
        "already an alias of 'joy'",
    ),
    ("alias_is_other_class", _set("aliases", {"joy": ["SADNESS"]}), "aliases.joy", "the name of 'sadness'"),
    ("alias_unknown_class", _set("aliases", {"happy": ["glad"]}), "aliases.happy", "is not a class"),
    ("alias_not_a_list", _set("aliases", {"joy": "glad"}), "aliases.joy", "must be a list"),
    ("prompt_keys_twice", _set("prompt_keys", ["Joy", "Joy", "Anger"]), "prompt_keys[1]", "could never be predicted"),
    ("prompt_keys_case", _set("prompt_keys", ["Joy", "JOY", "Anger"]), "prompt_keys[1]", "also the key of 'joy'"),
    (
        "prompt_key_other_class",
        _set("prompt_keys", ["Sadness", "Joy", "Anger"]),
        "prompt_keys[0]",
        "is the name of 'sadness'",
    ),
    ("prompt_keys_count", _set("prompt_keys", ["Joy", "Sadness"]), "prompt_keys", "2 JSON keys for 3 classes"),
    ("prompt_keys_map_unknown", _set("prompt_keys", {"joy": "J", "sad": "S"}), "prompt_keys.sad", "not a class"),
    ("class_display_unknown", _set("class_display", {"happy": "Happy"}), "class_display.happy", "not a class"),
    ("split_fraction_typo", _set("split", {"fraction": [0.5, 0.5]}), "split.fraction", "unknown key"),
    ("ambiguity_edges_typo", _set("ambiguity", {"edges": [0.3, 0.6]}), "ambiguity.edges", "unknown key"),
    ("prompt_taks_typo", _set("prompt.taks", "x"), "prompt.taks", "unknown key"),
    ("data_idd_typo", _set("data.idd", "x"), "data.idd", "unknown key"),
    ("download_sha_typo", _set("download", [{"url": "u", "name": "n", "sha": "x"}]), "download[0].sha", "unknown"),
    (
        "published_typo",
        _set("published", [{"method": "m", "source": "s", "jsdd": 0.1}]),
        "published[0].jsdd",
        "unknown",
    ),
    ("prompt_task_missing", _set("prompt.task", None), "prompt.task", "required key is missing"),
    ("fractional_truthy_string", _set("data.fractional_counts", "yes"), "data.fractional_counts", "true or false"),
    ("seed_float", _set("seed", 1.5), "seed", "must be an integer"),
    ("seed_string", _set("seed", "42"), "seed", "must be an integer"),
    ("seed_bool", _set("seed", True), "seed", "must be an integer"),
    ("seed_negative", _set("seed", -1), "seed", "must be >= 0, got -1"),
    ("seed_twice", _all(_set("seed", 1), _set("split", {"seed": 2})), "split.seed", "given twice"),
    ("fractions_zero", _set("split", {"fractions": [0.5, 0.5, 0.0]}), "split.fractions", "positive fractions"),
    ("fractions_strings", _set("split", {"fractions": ["0.5", "0.5"]}), "split.fractions[0]", "must be a number"),
    ("bins_nan", _set("ambiguity", {"bins": [0.3, float("nan")]}), "ambiguity.bins[1]", "finite number"),
    ("scheme_typo", _set("ambiguity", {"scheme": "entropie"}), "ambiguity.scheme", "'entropy' or 'active_labels'"),
    ("modality_unknown", _set("modality", "audio"), "modality", "'text', 'speech' or 'speech\\+text'"),
    ("name_not_identifier", _set("name", "My Data"), "name", "must be a lowercase name"),
    ("multi_label_unknown", _set("data.multi_label", "both"), "data.multi_label", "'votes' or 'split'"),
    (
        "multi_label_split_no_rater",
        _all(_set("data.multi_label", "split"), _set("data.rater", None)),
        "data.multi_label",
        "needs data.rater",
    ),
    (
        "counts_missing_class",
        _set("data", {"path": "d.csv", "counts": {"joy": "a", "sadness": "b"}}),
        "data.counts",
        r"\['anger'\] have no count column",
    ),
    (
        "counts_unknown_class",
        _set("data", {"path": "d.csv", "counts": {"joyy": "a"}}),
        "data.counts.joyy",
        "not a class",
    ),
    ("rater_is_label", _set("data.rater", "label"), "data.rater", "already data.label"),
    (
        "fractional_long",
        _all(_set("data.format", "long"), _set("data.fractional_counts", True)),
        "data.fractional_counts",
        "applies to wide files",
    ),
    ("format_case", _set("data.format", "Wide"), "data.format", "'auto', 'long' or 'wide'"),
    ("data_and_loader", _set("loader", "m:f"), "data", "exactly one of data"),
    ("loader_shape", _all(_set("data", None), _set("loader", "not a loader")), "loader", "must be a function as"),
    ("target_attribute", _set("prompt.target", "{text.upper}"), "prompt.target", "not text fields"),
    ("target_positional", _set("prompt.target", "{0}"), "prompt.target", "not text fields"),
    ("target_no_field", _set("prompt.target", "Read it."), "prompt.target", "uses no text field"),
    ("target_conversion", _set("prompt.target", "Text: {text!r}"), "prompt.target", r"\{text!r\}: a field is inserted"),
    ("target_format_spec", _set("prompt.target", "Text: {text:.5}"), "prompt.target", r"\{text:.5\}.*cut the text"),
    (
        "bins_for_active_labels",
        _set("ambiguity", {"scheme": "active_labels", "bins": [0.2, 0.4]}),
        "ambiguity.bins",
        "apply to scheme: entropy",
    ),
    (
        "long_with_counts",
        _set(
            "data",
            {
                "path": "d.csv",
                "id": "item",
                "label": "label",
                "format": "long",
                "counts": {c: f"n_{c}" for c in CLASSES},
            },
        ),
        "data.counts",
        "wide format",
    ),
    (
        "typo_of_a_required_key",
        _all(_set("classes", None), _set("clases", list(CLASSES))),
        "classes",
        r"required key is missing; unknown key\(s\) \['clases'\] here: a typo of it\?",
    ),
    (
        "typo_of_a_required_nested_key",
        _all(_set("prompt.task", None), _set("prompt.taks", "Which?")),
        "prompt.task",
        r"\['prompt.taks'\] here",
    ),
    ("sha256_shape", _set("download", [{"url": "u", "name": "n", "sha256": "abc"}]), "download[0].sha256", "SHA-256"),
    (
        "subset_display_unknown",
        _set("subsets", {"names": ["a"], "display": {"b": "B"}}),
        "subsets.display.b",
        "not a subset",
    ),
]


@pytest.mark.parametrize(
    ("change", "key", "message"), [c[1:] for c in DEFINITION_CASES], ids=[c[0] for c in DEFINITION_CASES]
)
def test_bad_definition_names_file_and_key(tmp_path, change, key, message):
    doc = copy.deepcopy(base_doc())
    change(doc)
    path = write_def(tmp_path, doc)
    with pytest.raises(
        DefinitionError, match=rf"^{re.escape(str(path.resolve()))}: key '{re.escape(key)}': .*{message}"
    ):
        read_definition(path)


# a billion laughs: nine levels of nine aliases each (9**9 strings once expanded)
BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi")
)
YAML_CASES = [
    ("alias_bomb_display_name", BOMB.replace("\ni: ", "\ndisplay_name: "), r"line 6: .*expand to more than 100,000"),
    ("alias_bomb_manual", BOMB.replace("\ni: ", "\nmanual: "), r"line 6: .*expand to more than 100,000"),
    ("alias_cycle", "name: &n [x, *n]\n", r"line 1: .*refers to the value that contains it"),
    ("duplicate_key", "name: x\nname: y\n", "line 2: .*duplicate key 'name' \\(first on line 1\\)"),
    ("not_yaml", "name: [unclosed\n", "line 2: not valid YAML: expected ',' or ']'"),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in YAML_CASES], ids=[c[0] for c in YAML_CASES])
def test_unsafe_yaml_is_refused_naming_file_and_line(tmp_path, text, message):
    path = write_def(tmp_path, text)
    with pytest.raises(DefinitionError, match=rf"^{re.escape(str(path.resolve()))}: key '<yaml>': {message}"):
        read_definition(path)


def test_definition_that_is_not_a_mapping(tmp_path):
    path = write_def(tmp_path, "- a\n- b\n")
    with pytest.raises(DefinitionError, match=r"def.yaml: key '<top>': a definition is a mapping of keys, got list"):
        read_definition(path)


# --- round trip ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["chaosnli", "goemotions", "msp_podcast", "triage_probe", "own"])
def test_definition_round_trips_through_yaml(tmp_path, name):
    if name == "own":
        doc = base_doc() | {
            "prompt_keys": {"joy": "Joy", "sadness": "Sad", "anger": "Angry"},
            "aliases": {"joy": ["glad"]},
            "split": {"fractions": [0.6, 0.4], "seed": 7},
            "ambiguity": {"scheme": "entropy", "bins": [0.25, 0.75]},
            "published": [{"method": "m", "source": "s", "jsd": 0.25, "jsd_log_base": "e"}],
        }
        doc["data"] |= {"multi_label": "split", "label": None, "format": "long"}
        original = read_definition(write_def(tmp_path, doc))
    else:
        original = registry()[name]
    again = parse_definition(load_yaml(original.to_yaml(), "dump"), original.source)
    assert again == original
    assert again.to_dict() == original.to_dict()
    if name == "own":
        assert original.spec.prompt_keys == ("Joy", "Sad", "Angry") and original.seed == 7
        assert original.data["multi_label"] == "split" and original.data["label"] is None


# --- data files ----------------------------------------------------------------------------------------
def _csv(folder: Path, rows: list[dict[str, Any]], name: str = "d.csv") -> Path:
    pd.DataFrame(rows).to_csv(folder / name, index=False)
    return folder / name


def _jsonl(folder: Path, records: list[Any], name: str = "d.jsonl") -> Path:
    (folder / name).write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return folder / name


def _long(i: str, label: str = "joy", rater: str = "r1", text: str = "t") -> dict[str, Any]:
    return {"item": i, "text": text, "rater": rater, "label": label}


def _wide(i: Any, joy: Any = 1, sadness: Any = 0, anger: Any = 0) -> dict[str, Any]:
    return {"item": i, "text": "t", "n_joy": joy, "n_sadness": sadness, "n_anger": anger}


def _load(folder: Path, data_file: Path, **data: Any) -> pd.DataFrame:
    doc = base_doc()
    doc["data"] = {"path": data_file.name, "id": "item", **data}
    return load(str(write_def(folder, doc)))


LONG = {"label": "label", "rater": "rater"}
WIDE_DATA = {"label": None, "counts": {c: f"n_{c}" for c in CLASSES}}

# (case id, writer of the data file, data: options, line, field, message)
DATA_CASES: list[tuple[str, Callable[[Path], Path], dict[str, Any], int | None, str | None, str]] = [
    ("null_id", lambda d: _jsonl(d, [_long("a"), {**_long("b"), "item": None}]), LONG, 2, "item", "missing id"),
    (
        "no_id_key",
        lambda d: _jsonl(d, [_long("a"), {"text": "t", "rater": "r", "label": "joy"}]),
        LONG,
        2,
        "item",
        "missing id",
    ),
    (
        "float_id",
        lambda d: _jsonl(d, [_long("a"), {**_long("b"), "item": 1.0}]),
        LONG,
        2,
        "item",
        r"id must be text \(or an integer\), got 1.0",
    ),
    ("bool_id", lambda d: _jsonl(d, [{**_long("b"), "item": True}]), LONG, 1, "item", "got True"),
    ("empty_id", lambda d: _csv(d, [_long("a"), _long(" ")]), LONG, 3, "item", "empty id"),
    ("empty_rater", lambda d: _csv(d, [_long("a"), _long("a", rater="")]), LONG, 3, "rater", "empty rater"),
    (
        "latin1_jsonl",
        lambda d: (
            (d / "d.jsonl").write_bytes(b'{"item": "a", "text": "caf\xe9", "rater": "r", "label": "joy"}\n')
            and d / "d.jsonl"
        ),
        LONG,
        1,
        None,
        r"not UTF-8 text \(byte 0xe9 at column 27\)",
    ),
    (
        "short_row",
        lambda d: (d / "d.csv").write_text("item,text,rater,label\na,t,r1,joy\nb,t\n") and d / "d.csv",
        LONG,
        3,
        "rater",
        "fewer fields than the header",
    ),
    (
        "header_twice",
        lambda d: (d / "d.csv").write_text("item,text,text,rater,label\na,t,t,r1,joy\n") and d / "d.csv",
        LONG,
        1,
        "text",
        "column named twice",
    ),
    (
        "long_row",
        lambda d: (d / "d.csv").write_text("item,text,rater,label\na,t,r1,joy,extra\n") and d / "d.csv",
        LONG,
        2,
        None,
        "5 fields for 4 columns .*more fields",
    ),
    (
        "quoted_newline_keeps_line_numbers",
        lambda d: _csv(d, [_long("a", text="two\nlines"), _long("b", "fear")]),
        LONG,
        4,
        "label",
        "unknown class 'fear'",
    ),
    (
        "jsonl_key_twice",
        lambda d: _jsonl(d, ['{"item": "a", "item": "b", "text": "t", "rater": "r", "label": "joy"}']),
        LONG,
        1,
        "item",
        "key given twice",
    ),
    ("jsonl_not_object", lambda d: _jsonl(d, [_long("a"), [1, 2]]), LONG, 2, None, "must be a JSON object, got list"),
    (
        "jsonl_blank_lines_keep_numbers",
        lambda d: _jsonl(d, [_long("a"), "", {**_long("b"), "label": "fear"}]),
        LONG,
        3,
        "label",
        "unknown class 'fear'",
    ),
    ("count_fraction", lambda d: _csv(d, [_wide("a"), _wide("b", joy=1.5)]), WIDE_DATA, 3, "n_joy", "whole number"),
    ("count_negative", lambda d: _csv(d, [_wide("a", sadness=-1)]), WIDE_DATA, 2, "n_sadness", "non-negative"),
    ("count_inf", lambda d: _csv(d, [_wide("a", anger="inf")]), WIDE_DATA, 2, "n_anger", "finite"),
    ("count_nan", lambda d: _csv(d, [_wide("a", anger="nan")]), WIDE_DATA, 2, "n_anger", "finite"),
    ("count_overflow", lambda d: _csv(d, [_wide("a", joy="1e400")]), WIDE_DATA, 2, "n_joy", "finite"),
    ("count_huge", lambda d: _csv(d, [_wide("a", joy=str(2**60))]), WIDE_DATA, 2, "n_joy", "cannot be held exactly"),
    ("count_text", lambda d: _csv(d, [_wide("a", joy="three")]), WIDE_DATA, 2, "n_joy", "a count is a number"),
    ("count_bool", lambda d: _jsonl(d, [_wide("a", joy=True)]), WIDE_DATA, 1, "n_joy", "not a boolean"),
    ("count_blank", lambda d: _csv(d, [_wide("a", joy="")]), WIDE_DATA, 2, "n_joy", "missing count"),
    ("count_null", lambda d: _jsonl(d, [_wide("a"), _wide("b", joy=None)]), WIDE_DATA, 2, "n_joy", "missing count"),
    (
        "zero_ratings",
        lambda d: _csv(d, [_wide("a"), _wide("b", joy=0)]),
        WIDE_DATA,
        3,
        "n_joy, n_sadness, n_anger",
        "zero ratings",
    ),
    ("wide_id_twice", lambda d: _csv(d, [_wide("a"), _wide("a")]), WIDE_DATA, 3, "item", "appears on lines 2 and 3"),
    (
        "unknown_label",
        lambda d: _csv(d, [_long("a"), _long("a", "happy", "r2")]),
        LONG,
        3,
        "label",
        "unknown class 'happy'",
    ),
    ("empty_label", lambda d: _csv(d, [_long("a"), _long("b", " ")]), LONG, 3, "label", "empty label"),
    ("null_label", lambda d: _jsonl(d, [_long("a"), {**_long("b"), "label": None}]), LONG, 2, "label", "missing label"),
    ("null_rater", lambda d: _jsonl(d, [{**_long("a"), "rater": None}]), LONG, 1, "rater", "missing rater"),
    ("list_text", lambda d: _jsonl(d, [{**_long("a"), "text": ["t"]}]), LONG, 1, "text", "must be text"),
    (
        "bad_split",
        lambda d: _csv(d, [{**_long("a"), "part": "dev"}]),
        {**LONG, "split": "part"},
        2,
        "part",
        "unknown split 'dev'",
    ),
]


@pytest.mark.parametrize(
    ("writer", "data", "line", "field", "message"), [c[1:] for c in DATA_CASES], ids=[c[0] for c in DATA_CASES]
)
def test_bad_data_names_file_line_and_field(tmp_path, writer, data, line, field, message):
    data_file = writer(tmp_path)
    where = re.escape(str(data_file))
    if line is not None:
        where += f", line {line}"
    if field is not None:
        where += f", field {re.escape(repr(field))}"
    with pytest.raises(DataFormatError, match=rf"^{where}: .*{message}"):
        _load(tmp_path, data_file, **data)


def test_undeclared_subset_is_an_error(tmp_path):
    _csv(tmp_path, [{**_long("a"), "src": "web"}, {**_long("b"), "src": "mail"}])
    doc = base_doc() | {"subsets": {"names": ["web", "news"]}}
    doc["data"] = {"path": "d.csv", "id": "item", "subset": "src", **LONG}
    with pytest.raises(DataFormatError, match=r"d.csv, line 3, field 'src': subset 'mail' is not one of"):
        load(str(write_def(tmp_path, doc)))


# --- valid but tricky: the exact table -------------------------------------------------------------------
def test_ids_are_text_as_written(tmp_path):
    df = _load(tmp_path, _csv(tmp_path, [_long("1"), _long("01", "anger"), _long("1.0", "sadness")]), **LONG)
    assert df.set_index("id")["counts"].to_dict() == {"01": [0, 0, 1], "1": [1, 0, 0], "1.0": [0, 1, 0]}
    records = [{**_long(1)}, {**_long(2), "label": "anger"}, {**_long("02"), "label": "sadness"}]
    df = _load(tmp_path, _jsonl(tmp_path, records), **LONG)  # JSON integers become their digits, never "1.0"
    assert sorted(df["id"]) == ["02", "1", "2"] and all(isinstance(i, str) for i in df["id"])
    pd.DataFrame({"item": [7, 8], "text": ["t", "u"], **{f"n_{c}": [1, 2] for c in CLASSES}}).to_parquet(
        tmp_path / "w.parquet"
    )
    df = _load(tmp_path, tmp_path / "w.parquet", **WIDE_DATA)
    assert df["id"].tolist() == ["7", "8"] and df["n_annotators"].tolist() == [3, 6]


MULTI = [
    _long("a", "joy", "r1"),
    _long("a", "sadness", "r1"),  # r1 gives item a two labels: both count
    _long("a", "Joy ", "r1"),  # an exact repeat (same item, rater and label): counted once, reported
    _long("a", "joy", "r2"),
    _long("a", "anger", "r3"),
    _long("a", "sadness", "r3"),
    _long("a", "joy", "r3"),
    _long("b", "anger", "r1"),
]


def test_multi_label_votes_count_every_distinct_label(tmp_path):
    df = _load(tmp_path, _csv(tmp_path, MULTI), **LONG).set_index("id")
    assert df.loc["a", "counts"] == [3.0, 2.0, 1.0]  # joy: r1 r2 r3; sadness: r1 r3; anger: r3
    assert df.loc["a", "dist"] == pytest.approx([3 / 6, 2 / 6, 1 / 6], abs=1e-15)
    assert df.loc["a", "n_annotators"] == 3 and df.loc["b", "counts"] == [0.0, 0.0, 1.0]
    assert df.attrs["skipped"] == {REPEAT: 1}


def test_multi_label_split_gives_each_rater_one_vote(tmp_path):
    df = _load(tmp_path, _csv(tmp_path, MULTI), **LONG, multi_label="split").set_index("id")
    # r1: joy 1/2, sadness 1/2; r2: joy 1; r3: anger, sadness, joy 1/3 each
    assert df.loc["a", "counts"] == pytest.approx([1 / 2 + 1 + 1 / 3, 1 / 2 + 1 / 3, 1 / 3], abs=1e-15)
    assert df.loc["a", "dist"] == pytest.approx([11 / 18, 5 / 18, 2 / 18], abs=1e-15)
    assert df.loc["a", "n_annotators"] == 3 and df.attrs["skipped"] == {REPEAT: 1}


def test_labels_match_after_case_whitespace_and_unicode_folding(tmp_path):
    doc = base_doc() | {"classes": ["caf\u00e9", "bar"], "aliases": {"bar": ["pub_house"]}}
    doc["data"] = {"path": "d.csv", "id": "item", **LONG}
    rows = [_long("a", " CAFE\u0301", "r1"), _long("a", "Caf\u00e9", "r2"), _long("a", "Pub-House", "r3")]
    _csv(tmp_path, rows)
    df = load(str(write_def(tmp_path, doc)))
    assert df["counts"].tolist() == [[2.0, 1.0]] and df["majority"].tolist() == ["caf\u00e9"]


def test_fractional_counts_only_when_declared(tmp_path):
    data_file = _csv(tmp_path, [_wide("a", joy=0.5, sadness=1.5), _wide("b", joy="2.0")])
    df = _load(tmp_path, data_file, **WIDE_DATA, fractional_counts=True).set_index("id")
    assert df.loc["a", "counts"] == [0.5, 1.5, 0.0] and df.loc["a", "dist"] == [0.25, 0.75, 0.0]
    assert df.loc["a", "n_annotators"] == 2 and df.loc["b", "counts"] == [2.0, 0.0, 0.0]
    with pytest.raises(DataFormatError, match=r"d.csv, line 2, field 'n_joy': a count is a whole number"):
        _load(tmp_path, data_file, **WIDE_DATA)


def test_null_text_is_an_empty_text_never_the_word_none(tmp_path):
    records = [_long("a"), {**_long("b"), "text": None}, _long("c")]
    data_file = _jsonl(tmp_path, records)
    with pytest.raises(DataFormatError, match=r"d.jsonl, line 2, field 'text': empty text"):
        _load(tmp_path, data_file, **LONG)
    df = _load(tmp_path, data_file, **LONG, empty_text="skip")
    assert df["id"].tolist() == ["a", "c"] or sorted(df["id"]) == ["a", "c"]
    assert df.attrs["skipped"] == {"item with an empty text": 1} and "None" not in set(df["text"])


# --- the registry is a leaf: no import cycle among the data modules ------------------------------------------
def test_data_modules_import_without_a_cycle():
    root = Path(__file__).resolve().parents[1] / "shala_lib" / "data"
    graph: dict[str, set[str]] = {}
    for path in [*root.glob("*.py"), *root.glob("loaders/*.py")]:
        name = "shala_lib.data." + ".".join(path.relative_to(root).with_suffix("").parts)
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):  # function-level imports count too
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("shala_lib.data"):
                deps.add(node.module)
        graph[name] = deps
    assert graph["shala_lib.data.definition"] == {"shala_lib.data.dataset_types"}
    state: dict[str, int] = {}

    def visit(n: str, trail: list[str]) -> None:
        if state.get(n) == 1:
            raise AssertionError(f"import cycle: {' -> '.join([*trail, n])}")
        if state.get(n) == 2 or n not in graph:
            return
        state[n] = 1
        for d in sorted(graph[n]):
            visit(d, [*trail, n])
        state[n] = 2

    for n in sorted(graph):
        visit(n, [])


# --- ChaosNLI's own reader: the release's two count fields must agree ------------------------------------
_CHAOS_OK = {
    "uid": "u1",
    "label_counter": {"n": 70, "e": 30},
    "label_count": [30, 70, 0],
    "example": {"premise": "A man sleeps.", "hypothesis": "A person rests."},
}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"label_counter": {"n": 70, "entailmnet": 30}}, "label_counter", "keys must be among"),
        ({"label_counter": {"n": 60, "e": 40}}, "label_counter", "disagrees with label_count"),
        ({"label_count": [30.5, 69.5, 0], "label_counter": None}, "label_count", "whole numbers"),
        ({"label_count": [10**30, 0, 0], "label_counter": None}, "label_count", "beyond 2**53"),
        ({"uid": None}, "uid", "non-empty string"),
        ({"uid": 17}, "uid", "non-empty string"),
        ({"example": {"premise": "", "hypothesis": "x"}}, "example.premise", "non-empty text"),
        ({"example": {"premise": None, "hypothesis": "x"}}, "example.premise", "non-empty text"),
    ],
)
def test_chaosnli_record_checked(tmp_path, change, field, message):
    import json

    from shala_lib.data.loaders.chaosnli import read_part

    rec = {**_CHAOS_OK, **change}
    path = tmp_path / "chaosNLI_snli.jsonl"
    path.write_text(json.dumps(_CHAOS_OK | {"uid": "u0"}) + "\n" + json.dumps(rec) + "\n")
    with pytest.raises(DataFormatError) as e:
        read_part(path, "snli")
    assert str(path) in str(e.value) and "line 2" in str(e.value) and field in str(e.value) and message in str(e.value)


def test_chaosnli_duplicate_uid_names_both_lines(tmp_path):
    import json

    from shala_lib.data.loaders.chaosnli import read_part

    path = tmp_path / "chaosNLI_snli.jsonl"
    path.write_text((json.dumps(_CHAOS_OK) + "\n") * 2)
    with pytest.raises(DataFormatError, match=r"item id 'u1' already on line 1"):
        read_part(path, "snli")
    path.write_text(json.dumps(_CHAOS_OK) + "\n")
    df = read_part(path, "snli")
    assert df["id"].tolist() == ["u1"] and df["counts"].iloc[0] == [30.0, 70.0, 0.0]
