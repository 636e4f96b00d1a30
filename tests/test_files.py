"""shala_lib.files (strict YAML, atomic writes, locks) and shala_lib.environment (what a run ran on)."""

import re
import subprocess
import time

import pytest
import yaml

from shala_lib.environment import git_commit, package_versions
from shala_lib.files import YamlFileError, atomic_path, load_yaml, read_yaml, write_text_atomic


def test_yaml_alias_bomb_is_refused_fast(tmp_path):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]" for i in range(9)]
    lines.append("display_name: *j")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    with pytest.raises(YamlFileError, match=r"bomb\.yaml:10: .*aliases here expand to more than 100,000 values"):
        read_yaml(path)
    assert time.perf_counter() - start < 1.0


def test_yaml_plain_aliases_as_safe_dump_writes_them_are_read():
    shared = {"k": [1, 2]}
    text = yaml.safe_dump({"a": shared, "b": shared})
    assert "*id001" in text and load_yaml(text) == {"a": {"k": [1, 2]}, "b": {"k": [1, 2]}}


def test_yaml_alias_cycle_is_refused():
    with pytest.raises(YamlFileError, match=r"^c\.yaml:1: .*refers to the value that contains it"):
        load_yaml("a: &a [1, *a]\n", "c.yaml")


def test_yaml_duplicate_key_names_both_lines():
    with pytest.raises(YamlFileError, match=r"my\.yaml:3: .*duplicate key 'classes' \(first on line 1\)"):
        load_yaml("classes: [a, b]\nname: x\nclasses: [c, d]\n", "my.yaml")


def test_yaml_syntax_error_names_file_and_line():
    with pytest.raises(YamlFileError, match=r"^cfg\.yaml:3: not valid YAML: expected .,. or .\]."):
        load_yaml("a: 1\nb: [1, 2\n", "cfg.yaml")


def test_yaml_not_utf8():
    with pytest.raises(YamlFileError, match=r"^x\.yaml: not UTF-8"):
        load_yaml(b"name: \xff\xfe\n", "x.yaml")


def test_yaml_plain_values_round_trip():
    assert load_yaml("a: 1\nb: [x, {c: 2.5}]\nc: null\n") == {"a": 1, "b": ["x", {"c": 2.5}], "c": None}


def test_atomic_write_replaces_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out" / "table.md"
    write_text_atomic(target, "first\n")
    write_text_atomic(target, "second\n")
    assert target.read_text() == "second\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["table.md"]


def test_atomic_write_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_atomic_folder(tmp_path):
    target = tmp_path / "model"
    with atomic_path(target, suffix="") as tmp:
        tmp.mkdir()
        (tmp / "w.bin").write_bytes(b"123")
    assert (target / "w.bin").read_bytes() == b"123"


def test_provenance_names_the_checkout_commit():
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    info = git_commit()
    assert info["commit"] == head and isinstance(info["dirty"], bool)
    versions = package_versions(("torch", "no-such-package-xyz"))
    assert re.match(r"\d+\.\d+", versions["torch"]) and versions["no-such-package-xyz"] == "not installed"
