"""`python -m shala_lib.train` as torchrun runs it, plus one callback: once checkpoint K
(`SHALA_TEST_KILL_AFTER_SAVE=K`) is saved and every process has written its share of it, process 0
SIGKILLs itself and torchrun stops the others. A crash at a known point, for the resume test."""

from __future__ import annotations

import os
import signal
import sys

from accelerate import PartialState
from transformers import TrainerCallback

import shala_lib.training.run as run
from shala_lib.train import main

KILL_AFTER = int(os.environ["SHALA_TEST_KILL_AFTER_SAVE"])


class KillAfterSave(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003, ANN201
        if state.global_step == KILL_AFTER:
            ps = PartialState()
            ps.wait_for_everyone()  # every process has written its part of the checkpoint
            if ps.is_main_process:
                os.kill(os.getpid(), signal.SIGKILL)
            ps.wait_for_everyone()  # the others wait here until torchrun stops them


_make_callbacks = run.make_callbacks
run.make_callbacks = lambda *a, **k: [*_make_callbacks(*a, **k), KillAfterSave()]

if __name__ == "__main__":
    sys.exit(main())
