"""Which process this is, and what all processes agree on (torchrun / accelerate launch)."""

from __future__ import annotations

import os
from typing import Any


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def any_process(flag: bool) -> bool:
    """`flag` OR-ed over all processes (itself when not distributed)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return flag
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def leave_distributed_training(trainer: Any) -> None:
    """Free the trainer's engine and switch off transformers' global ZeRO-3 flag, so that loading the
    final model for evaluation is a plain `from_pretrained`: with the flag on, it runs under
    `deepspeed.zero.Init`, which waits for the other processes (a hang when one process evaluates)."""
    import gc

    import torch
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    trainer.accelerator.free_memory()
    unset_hf_deepspeed_config()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
