"""Dispatch training to GPUs as a subprocess, so the notebook kernel survives and papermill can
run it headless; stream its log with a progress bar and read back its artifacts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

_PROGRESS = re.compile(r"(\d+)/(\d+) \[")


def gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # noqa: BLE001
        return 0


def training_command(
    config: str | Path,
    overrides: Sequence[str] = (),
    gpus: int | None = None,
    accelerate_config: str = "configs/accelerate_zero3.yaml",
    resume: bool = False,
) -> list[str]:
    """`python -m shala_lib.train` on CPU or one GPU; `accelerate launch` with ZeRO-3 on several."""
    gpus = gpu_count() if gpus is None else gpus
    args = [str(config), *(["--resume"] if resume else []), *(["--set", *overrides] if overrides else [])]
    if gpus > 1:
        return [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            accelerate_config,
            "--num_processes",
            str(gpus),
            "-m",
            "shala_lib.train",
            *args,
        ]
    return [sys.executable, "-m", "shala_lib.train", *args]


def run_streaming(cmd: Sequence[str], log_path: str | Path, desc: str = "train", cwd: str | Path | None = None) -> int:
    """Run `cmd`, tee its output to `log_path`, drive a progress bar from the trainer's `i/N [`."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    bar = tqdm(total=None, desc=desc, unit="step")
    with (
        open(log_path, "w") as log,
        subprocess.Popen(
            list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd, env=env, bufsize=1
        ) as proc,
    ):
        assert proc.stdout is not None
        buf = ""
        while True:
            ch = proc.stdout.read(1)
            if not ch:
                break
            log.write(ch)
            buf += ch
            if ch in "\r\n":
                m = _PROGRESS.search(buf)
                if m:
                    done, total = int(m.group(1)), int(m.group(2))
                    if bar.total != total:
                        bar.total = total
                    bar.n = done
                    bar.refresh()
                buf = ""
        rc = proc.wait()
    bar.close()
    if rc != 0:
        tail = log_path.read_text()[-3000:]
        raise RuntimeError(f"training failed (exit {rc}); see {log_path}. Last output:\n{tail}")
    return rc
