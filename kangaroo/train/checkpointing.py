"""DeepSpeed checkpoints with everything a bit-exact resume needs, and the final Hugging Face export.

Layout of `CKPT_DIR` (DeepSpeed's, plus one file per rank)::

    latest                      tag of the newest complete checkpoint (DeepSpeed writes it last)
    step0000004/                DeepSpeed model/optimizer/scheduler states (+ our train state as client_state)
    step0000004/rng_rank0.pt    python/numpy/torch RNG states of rank 0 (written before DeepSpeed's files)

A process killed while saving leaves `latest` pointing at the previous complete checkpoint.
"""

from __future__ import annotations

import logging
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

TAG_PREFIX = "step"


def tag_for(step: int) -> str:
    return f"{TAG_PREFIX}{step:07d}"


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def latest_tag(ckpt_dir: Path) -> str | None:
    marker = ckpt_dir / "latest"
    return marker.read_text().strip() if marker.is_file() else None


def save_checkpoint(engine, ckpt_dir: Path, step: int, train_state: dict[str, Any], keep: int) -> str:
    """Save a resumable checkpoint at optimizer step `step` (call on every rank); prune to `keep` newest."""
    tag = tag_for(step)
    rank = dist.get_rank() if dist.is_initialized() else 0
    (ckpt_dir / tag).mkdir(parents=True, exist_ok=True)
    torch.save(rng_state(), ckpt_dir / tag / f"rng_rank{rank}.pt")
    engine.save_checkpoint(str(ckpt_dir), tag=tag, client_state={"train_state": train_state})
    if rank == 0:
        tags = sorted(p.name for p in ckpt_dir.glob(f"{TAG_PREFIX}*") if p.is_dir())
        for old in tags[:-keep]:
            shutil.rmtree(ckpt_dir / old, ignore_errors=True)
    log.info("checkpoint %s saved", ckpt_dir / tag)
    return tag


def load_latest_checkpoint(engine, ckpt_dir: Path) -> dict[str, Any] | None:
    """Restore engine (weights, optimizer, LR schedule) and this rank's RNG from the newest checkpoint.

    Returns the saved train state, or None when there is no checkpoint yet (a fresh start).
    """
    tag = latest_tag(ckpt_dir)
    if tag is None:
        return None
    rank = dist.get_rank() if dist.is_initialized() else 0
    path, client_state = engine.load_checkpoint(str(ckpt_dir), tag=tag)
    if path is None:
        return None
    set_rng_state(torch.load(ckpt_dir / tag / f"rng_rank{rank}.pt", weights_only=False))
    log.info("resumed from %s", path)
    return client_state["train_state"]


def consolidated_state_dict(engine, ckpt_dir: Path, tag: str, zero_stage: int) -> dict[str, torch.Tensor]:
    """Full fp32 weights: ZeRO-3 (partitioned) and bf16 runs via `zero_to_fp32` from the final checkpoint
    (the fp32 master copy lives in the optimizer states); unpartitioned fp32 runs straight from the module."""
    if zero_stage >= 1 and (zero_stage == 3 or engine.bfloat16_enabled()):
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

        return get_fp32_state_dict_from_zero_checkpoint(str(ckpt_dir), tag=tag)
    return {name: tensor.detach().float() for name, tensor in engine.module.state_dict().items()}


def export_pretrained(engine, processor, state_dict: dict[str, torch.Tensor], out_dir: Path) -> Path:
    """Write a `save_pretrained` folder (safetensors + config + processor) from consolidated weights."""
    module = engine.module
    with torch.device("meta"):
        fresh = type(module)(module.config)
    fresh.load_state_dict(state_dict, strict=False, assign=True)
    missing = [n for n, p in fresh.named_parameters() if p.is_meta]
    if missing:
        raise RuntimeError(f"consolidated checkpoint lacks parameters: {missing[:5]}")
    for name, buffer in list(fresh.named_buffers()):
        if buffer.is_meta:  # non-persistent buffers (rotary inv_freq): copy the live module's
            owner, _, leaf = name.rpartition(".")
            source = module.get_buffer(name)
            fresh.get_submodule(owner).register_buffer(leaf, source.detach().clone(), persistent=False)
    fresh = fresh.float()
    fresh.config.dtype = torch.float32
    if getattr(module, "generation_config", None) is not None:
        fresh.generation_config = module.generation_config
    out_dir.mkdir(parents=True, exist_ok=True)
    fresh.save_pretrained(out_dir, safe_serialization=True)
    if processor is not None:
        processor.save_pretrained(out_dir)
    return out_dir
