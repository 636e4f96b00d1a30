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


IF_EXISTS = ("refuse", "overwrite", "resume")


def effective_if_exists(if_exists: str, run_dir: str | Path | None = None) -> str:
    """What the training command is told to do with an earlier run in `run_dir`: `refuse` (it stops and
    names the choices), `overwrite` (the earlier run is moved aside to `<name>.previous-N/`), `resume`
    (from its last checkpoint). `resume` asked for a `run_dir` without a checkpoint is `refuse`: a new
    run starts there when the folder holds no earlier run, and stops when it holds one."""
    if if_exists not in IF_EXISTS:
        raise ValueError(f"if_exists must be one of {IF_EXISTS}, got {if_exists!r}")
    if if_exists == "resume" and run_dir is not None:
        from shala_lib.training.run_dir import last_checkpoint

        if not Path(run_dir).is_dir() or last_checkpoint(Path(run_dir)) is None:
            return "refuse"
    return if_exists


def if_exists_flags(if_exists: str, run_dir: str | Path | None = None) -> list[str]:
    """The training command's flags for `effective_if_exists(if_exists, run_dir)`."""
    return {"overwrite": ["--overwrite"], "resume": ["--resume"]}.get(effective_if_exists(if_exists, run_dir), [])


def training_command(
    config: str | Path,
    overrides: Sequence[str] = (),
    gpus: int | None = None,
    accelerate_config: str = "configs/accelerate_zero3.yaml",
    resume: bool = False,
    if_exists: str = "refuse",
    run_dir: str | Path | None = None,
) -> list[str]:
    """`python -m shala_lib.train` on CPU or one GPU; `accelerate launch` with ZeRO-3 on several.

    `if_exists` (see `if_exists_flags`; `run_dir` lets `resume` start runs that have no checkpoint yet);
    `resume=True` is `if_exists="resume"`."""
    if resume:
        if if_exists not in ("refuse", "resume"):
            raise ValueError(f"resume=True contradicts if_exists={if_exists!r}")
        if_exists = "resume"
    gpus = gpu_count() if gpus is None else gpus
    args = [str(config), *if_exists_flags(if_exists, run_dir), *(["--set", *overrides] if overrides else [])]
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
    """Run `cmd`, tee its output to `log_path` (appended after a header line: an earlier run's log is
    kept), drive a progress bar from the trainer's `i/N [`."""
    import datetime

    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = log_path.stat().st_size if log_path.exists() else 0
    with open(log_path, "a") as head:
        head.write(f"===== {datetime.datetime.now().isoformat(timespec='seconds')}: {' '.join(cmd)}\n")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    bar = tqdm(total=None, desc=desc, unit="step")
    with (
        open(log_path, "a") as log,
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
        with open(log_path) as f:
            f.seek(start)
            tail = f.read()[-3000:]
        raise RuntimeError(f"training failed (exit {rc}); see {log_path}. Last output:\n{tail}")
    return rc
