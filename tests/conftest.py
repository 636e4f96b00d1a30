from __future__ import annotations

import os
from pathlib import Path

import pytest

from shala_lib.paths import data_dir
from shala_lib.tiny import build_tiny_model


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data root (SHALA_DATA_DIR or ../shared/data). The suite requires it: CI has it."""
    root = data_dir()
    if not (root / "chaosnli" / "chaosNLI_snli.jsonl").is_file():
        pytest.fail(f"real data not found under {root}; set SHALA_DATA_DIR (see README)")
    return root


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("WANDB_DISABLED", "true")


@pytest.fixture(scope="session")
def chaos(shared_data):
    """Real ChaosNLI, loaded once."""
    from shala_lib.datasets import load

    return load("chaosnli", data_dir=shared_data)


@pytest.fixture(scope="session")
def tiny(chaos, tmp_path_factory) -> str:
    """A tiny random Qwen2-style model (and tokenizer trained on ChaosNLI text), built by code."""
    path = tmp_path_factory.mktemp("tiny") / "model"
    texts = (chaos["premise"] + " " + chaos["hypothesis"]).tolist()[:400]
    return str(build_tiny_model(path, texts))


@pytest.fixture(scope="session")
def tiny_varied(chaos, tmp_path_factory) -> str:
    """The tiny model with a wider initialisation: its greedy outputs vary with the input (at the
    default 0.02 every prompt decodes to the same repeated token, which would make equality vacuous)."""
    path = tmp_path_factory.mktemp("tiny_varied") / "model"
    texts = (chaos["premise"] + " " + chaos["hypothesis"]).tolist()[:400]
    return str(build_tiny_model(path, texts, initializer_range=0.5))
