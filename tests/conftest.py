from __future__ import annotations

import os
from pathlib import Path

import pytest

from shala_lib.paths import data_dir


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
