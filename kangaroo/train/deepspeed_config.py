"""DeepSpeed JSON config generated from a stage block, and the rank environment for launcher-less runs."""

from __future__ import annotations

import os
import socket
from typing import Any

from kangaroo.train.settings import StageSettings

# Variables torch.distributed's env:// rendezvous reads; torchrun and the deepspeed launcher set them all.
RANK_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


DEEPSPEED_DEFAULT_BUCKET = 500_000_000


def deepspeed_config(stage: StageSettings, world_size: int, num_parameters: int) -> dict[str, Any]:
    """The `deepspeed.initialize(config=...)` dict for one stage on `world_size` ranks.

    Micro-batch = one packed row per rank; gradient accumulation from the stage's token batch. The optimizer
    and LR schedule are passed to `deepspeed.initialize` as torch objects (torch AdamW avoids the ~40 s JIT
    build of DeepSpeed's CPU Adam), so the config holds no `optimizer`/`scheduler` section.
    """
    zero: dict[str, Any] = {"stage": stage.zero_stage}
    bucket = stage.zero_bucket_elements or max(1, min(DEEPSPEED_DEFAULT_BUCKET, num_parameters))
    if stage.zero_stage >= 1:
        zero.update(reduce_bucket_size=bucket, allgather_bucket_size=bucket)
    if stage.zero_stage >= 2:
        zero.update(overlap_comm=False, contiguous_gradients=True, reduce_scatter=True)
    if stage.zero_stage == 3:
        zero.update(stage3_prefetch_bucket_size=bucket)
    if stage.offload_optimizer and stage.zero_stage >= 1:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if stage.offload_params:
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    if stage.zero_stage == 3:
        # Gather the full 16-bit weights on save so `save_16bit_model` works; fp32 comes from zero_to_fp32.
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    return {
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": stage.gradient_accumulation(world_size),
        "gradient_clipping": stage.grad_clip,
        "bf16": {"enabled": stage.precision == "bf16"},
        "fp16": {"enabled": False},
        "zero_optimization": zero,
        # torch.optim.AdamW is not on DeepSpeed's tested list for ZeRO; it is a plain torch optimizer, which
        # ZeRO wraps like any other.
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,  # our own metrics log reports progress
        "wall_clock_breakdown": False,
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_rank_env() -> bool:
    """Outside a launcher, set the single-process rank variables (else DeepSpeed falls back to mpi4py).

    Returns True when this process set them (a single-process run), False under torchrun/deepspeed.
    """
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return False
    defaults = {
        "RANK": "0",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "1",
        "LOCAL_WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    return True
