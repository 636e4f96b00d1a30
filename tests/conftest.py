from __future__ import annotations

import os
from pathlib import Path

import pytest

from shala_lib.generation.tiny import build_tiny_model
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


@pytest.fixture(scope="session")
def chaos(shared_data):
    """Real ChaosNLI, loaded once."""
    from shala_lib.data.loading import load

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


@pytest.fixture(scope="session")
def msp_speech(tmp_path_factory) -> Path:
    """A data root holding a generated MSP-Podcast corpus with real clips (v1.12 label form): 40 items,
    clips at 16/8/22.05/44.1 kHz, mono and stereo, one of them 31 s long."""
    from shala_lib.data.speech_fixture import write_msp_fixture

    root = tmp_path_factory.mktemp("msp_speech")
    write_msp_fixture(root, n_items=40, seed=0, long_clips=1)
    return root


@pytest.fixture(scope="session")
def tiny_thinker(msp_speech, tmp_path_factory) -> str:
    """A tiny random Qwen2.5-Omni thinker (with Whisper feature-extractor config and an Omni-style chat
    template), its tokenizer trained on the fixture's transcripts and prompt words."""
    from shala_lib.generation.tiny import build_tiny_thinker

    texts = [p.read_text() for p in sorted((msp_speech / "msp_podcast" / "Transcripts").glob("*.txt"))]
    texts += ["Predict the probability of the emotion in the target utterance from the following options"] * 3
    path = tmp_path_factory.mktemp("tiny_thinker") / "model"
    return str(build_tiny_thinker(path, texts * 5, initializer_range=0.2))
