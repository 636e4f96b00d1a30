"""The embedded model's conversion cache when several processes use it at once, when a conversion is
killed, and when the cache is found broken: one process converts under a lock into a unique temporary
folder renamed into place; a broken cache is rebuilt with a warning, never trusted for its marker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from shala_lib.generation.embedded import MARKER, cache_problem

NAME = "SmolLM2-135M-Instruct"
# convert (or reuse) the embedded model, print the folder; INFO logging shows whether it converted
SCRIPT = (
    "import logging, sys\n"
    "logging.basicConfig(level=logging.INFO, stream=sys.stderr, format='%(levelname)s %(message)s')\n"
    "from shala_lib.generation.embedded import embedded_model_dir\n"
    "print(embedded_model_dir())\n"
)


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "SHALA_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _start(cache: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT], env=_env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in (cache / "models").glob(f".{NAME}.*.tmp"))


@pytest.mark.slow
def test_two_processes_converting_at_once_both_succeed(tmp_path):
    procs = [_start(tmp_path), _start(tmp_path)]
    outs = [p.communicate(timeout=600) for p in procs]
    out_dir = tmp_path / "models" / NAME
    for p, (stdout, stderr) in zip(procs, outs):
        assert p.returncode == 0, stderr[-2000:]
        assert stdout.strip().splitlines()[-1] == str(out_dir)  # DeepSpeed may print its accelerator first
    # the lock: exactly one of the two converted, the other waited and used its result
    assert sum("converting SmolLM2-135M-Instruct.Q4_1.gguf" in err for _, err in outs) == 1
    assert cache_problem(out_dir) is None
    assert _leftovers(tmp_path) == []
    listed = json.loads((out_dir / MARKER).read_text())["files"]
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(listed)
    assert listed["model.safetensors"] == (out_dir / "model.safetensors").stat().st_size
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(out_dir)
    tok = AutoTokenizer.from_pretrained(out_dir)
    assert model.config.model_type == "llama"
    assert model.get_input_embeddings().weight.shape[0] == model.config.vocab_size
    assert tok("neutral")["input_ids"]


@pytest.mark.slow
def test_a_conversion_killed_midway_leaves_nothing_that_breaks_the_next_run(tmp_path):
    proc = _start(tmp_path)
    deadline = time.monotonic() + 300
    while not _leftovers(tmp_path) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the conversion ended before its temporary folder was seen"
    assert _leftovers(tmp_path), "no temporary folder appeared within 300 s"
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    out_dir = tmp_path / "models" / NAME
    assert not out_dir.exists()  # a kill leaves only the temporary folder, never a half cache
    assert len(_leftovers(tmp_path)) == 1

    again = subprocess.run([sys.executable, "-c", SCRIPT], env=_env(tmp_path), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.strip().splitlines()[-1] == str(out_dir)
    assert cache_problem(out_dir) is None
    assert _leftovers(tmp_path) == []  # the killed run's folder was removed


@pytest.mark.slow
def test_a_marker_without_weights_is_rebuilt_with_a_warning(tmp_path):
    out_dir = tmp_path / "models" / NAME
    out_dir.mkdir(parents=True)
    (out_dir / "config.json").write_text("{}")
    files = {"config.json": 2, "model.safetensors": 538090408, "tokenizer.json": 3522118}
    (out_dir / MARKER).write_text(json.dumps({"source": "x.gguf", "dtype": "float32", "files": files}))
    run = subprocess.run([sys.executable, "-c", SCRIPT], env=_env(tmp_path), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (
        f"WARNING {out_dir}: the converted model is broken (model.safetensors is missing); converting it again"
        in run.stderr
    )
    assert cache_problem(out_dir) is None
    assert (out_dir / "model.safetensors").stat().st_size > 100_000_000


def _fake_cache(folder: Path) -> Path:
    """A small folder shaped like a converted cache, with a marker listing its files."""
    folder.mkdir(parents=True)
    save_file({"w": torch.zeros(64)}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "tokenizer.json").write_text("{}")
    files = {p.name: p.stat().st_size for p in sorted(folder.iterdir())}
    (folder / MARKER).write_text(json.dumps({"files": files}))
    return folder


def test_cache_problem_accepts_a_complete_cache(tmp_path):
    assert cache_problem(_fake_cache(tmp_path / "m")) is None


def test_cache_problem_names_each_way_a_cache_breaks(tmp_path):
    assert cache_problem(tmp_path / "absent") == "absent"

    deleted = _fake_cache(tmp_path / "deleted")
    (deleted / "model.safetensors").unlink()
    assert cache_problem(deleted) == "model.safetensors is missing"

    truncated = _fake_cache(tmp_path / "truncated")
    written = (truncated / "model.safetensors").stat().st_size
    os.truncate(truncated / "model.safetensors", 200)
    assert cache_problem(truncated) == f"model.safetensors has 200 bytes, {written} were written"

    no_marker = _fake_cache(tmp_path / "no_marker")
    (no_marker / MARKER).unlink()
    assert cache_problem(no_marker) == f"no {MARKER} (an unfinished conversion)"

    no_tokenizer = _fake_cache(tmp_path / "no_tokenizer")
    (no_tokenizer / "tokenizer.json").unlink()
    listed = {n: (no_tokenizer / n).stat().st_size for n in ("config.json", "model.safetensors")}
    (no_tokenizer / MARKER).write_text(json.dumps({"files": listed}))
    assert cache_problem(no_tokenizer) == f"{MARKER} lists no config.json, weights or tokenizer"

    # a marker from an older version (no file list) whose weights were cut short: the header check finds it
    legacy = _fake_cache(tmp_path / "legacy")
    (legacy / MARKER).write_text(json.dumps({"source": "x.gguf", "dtype": "float32"}))
    assert cache_problem(legacy) is None
    os.truncate(legacy / "model.safetensors", (legacy / "model.safetensors").stat().st_size - 10)
    assert cache_problem(legacy).startswith("model.safetensors unreadable (SafetensorError: ")


# --- outputs are written to a unique temporary path and renamed into place ------------------------------
def test_an_interrupted_write_leaves_the_previous_outputs(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from shala_lib.data.canonical import write_parquet
    from shala_lib.pipeline.artifacts import write_table
    from shala_lib.viz.plots import save_figure

    df = pd.DataFrame({"method": ["a", "b"], "jsd": [0.1, 0.25]})
    table = write_parquet(df, tmp_path / "t.parquet")
    csv, md, tex = write_table(df, tmp_path, "res")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    ax.set_title("panel")
    png, pdf = save_figure(fig, tmp_path, "fig")
    before = {p.name: p.read_bytes() for p in (table, csv, md, tex, png, pdf)}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before)  # no temporary file left

    def half(self, path, *args, **kwargs):  # a write cut short: some bytes, then the process "dies"
        Path(path).write_bytes(b"PAR1 half a table")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_parquet", half)
    monkeypatch.setattr(pd.DataFrame, "to_csv", half)
    monkeypatch.setattr(type(fig), "savefig", half)
    other = pd.DataFrame({"method": ["c"], "jsd": [0.5]})
    with pytest.raises(KeyboardInterrupt):
        write_parquet(other, table)
    with pytest.raises(KeyboardInterrupt):
        write_table(other, tmp_path, "res")
    with pytest.raises(KeyboardInterrupt):
        save_figure(fig, tmp_path, "fig")
    plt.close(fig)
    assert {p.name: p.read_bytes() for p in (table, csv, md, tex, png, pdf)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before)
