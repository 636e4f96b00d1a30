"""`python -m shala_lib.train` as torchrun / accelerate launch runs it, plus test faults at known points:

- `SHALA_TEST_KILL_AFTER_SAVE=K`: once checkpoint K is saved and every process has written its share
  of it, process 0 SIGKILLs itself and the launcher stops the others (for the resume tests);
- `SHALA_TEST_NAN_AT_STEP=N` (and `SHALA_TEST_NAN_RANK=R`, default 1): at the end of step N, just before
  the weights guard looks, process R writes a NaN into the weights it holds (under ZeRO-3 its own
  partition `param.ds_tensor`, which no other process holds); every process prints
  `NAN-INJECTED rank=R zero3_partition=...` / exits with the guard's code (for the guard tests).
"""

from __future__ import annotations

import os
import signal
import sys

from accelerate import PartialState
from transformers import TrainerCallback

import shala_lib.training.run as run
from shala_lib.train import main

KILL_AFTER = int(os.environ.get("SHALA_TEST_KILL_AFTER_SAVE", "0"))
NAN_AT = int(os.environ.get("SHALA_TEST_NAN_AT_STEP", "0"))
NAN_RANK = int(os.environ.get("SHALA_TEST_NAN_RANK", "1"))


class KillAfterSave(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003, ANN201
        if state.global_step == KILL_AFTER:
            ps = PartialState()
            ps.wait_for_everyone()  # every process has written its part of the checkpoint
            if ps.is_main_process:
                os.kill(os.getpid(), signal.SIGKILL)
            ps.wait_for_everyone()  # the others wait here until the launcher stops them


def poison(model) -> bool:  # noqa: ANN001
    """Set one weight this process holds to NaN; True when it was a ZeRO-3 partition (`ds_tensor`)."""
    import torch

    with torch.no_grad():
        for p in model.parameters():
            held = getattr(p, "ds_tensor", None)
            if held is not None and held.numel():
                held.view(-1)[0] = float("nan")
                return True
        next(iter(model.parameters())).view(-1)[0] = float("nan")
    return False


def with_nan_injection(guard):  # noqa: ANN001, ANN201
    """Wrap the guard's on_step_end: poison first (on NAN_RANK only), then the guard checks as usual."""
    check = guard.on_step_end

    def on_step_end(args, state, control, model=None, **kw):  # noqa: ANN001, ANN003, ANN202
        rank = PartialState().process_index
        if state.global_step == NAN_AT and rank == NAN_RANK and model is not None:
            print(f"NAN-INJECTED rank={rank} step={NAN_AT} zero3_partition={poison(model)}", flush=True)
        return check(args, state, control, model=model, **kw)

    guard.on_step_end = on_step_end
    return guard


_make_callbacks = run.make_callbacks


def make_callbacks(*a, **k):  # noqa: ANN002, ANN003, ANN201
    callbacks = _make_callbacks(*a, **k)
    if NAN_AT:
        with_nan_injection(callbacks[0])  # the guard stays first: run.train reads callbacks[0]
    return [*callbacks, KillAfterSave()] if KILL_AFTER else callbacks


run.make_callbacks = make_callbacks

if __name__ == "__main__":
    code = main()
    print(f"EXIT rank={PartialState().process_index} code={code}", flush=True)
    sys.exit(code)
