"""DeepSpeed checkpoints that count only once every rank has finished, resume that falls back past a torn
one, retention of old runs' checkpoint folders, and the final Hugging Face export.

Layout of `CKPT_DIR` (DeepSpeed's files, plus one RNG file per rank and our commit marker)::

    step0000004/                DeepSpeed model/optimizer/scheduler states (+ our train state as client_state)
    step0000004/rng_rank0.pt    python/numpy/torch RNG states of rank 0 (written before DeepSpeed's files)
    step0000004/COMMITTED.json  written last, by rank 0, after a barrier that every rank reaches only once its
                                shards are written: step, world size, every file of the tag with its size

A checkpoint without the marker (a process killed while saving, on any rank) or whose files no longer match
it (a truncated shard) is skipped by resume, which takes the newest committed one instead. DeepSpeed's own
`latest` file is not written: rank 0 writes it before the other ranks have finished their shards.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

TAG_PREFIX = "step"
COMMIT_MARKER = "COMMITTED.json"
RUNS_FOLDER = "runs"  # CHECKPOINT_ROOT/<stage>/runs/<job>: multi-node stages (kangaroo.k8s.multinode)


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


def rank_and_world() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def tag_files(tag_dir: Path) -> dict[str, int]:
    """Every file below TAG_DIR (relative path -> size), the marker excluded."""
    return {
        str(path.relative_to(tag_dir)): path.stat().st_size
        for path in sorted(tag_dir.rglob("*"))
        if path.is_file() and path.name != COMMIT_MARKER
    }


def write_commit_marker(tag_dir: Path, step: int, world_size: int) -> None:
    """The commit point: a temp file, fsynced, renamed over the marker, the folder fsynced."""
    record = {"step": step, "world_size": world_size, "files": tag_files(tag_dir)}
    temporary = tag_dir / f".{COMMIT_MARKER}.tmp"
    with open(temporary, "w") as handle:
        json.dump(record, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, tag_dir / COMMIT_MARKER)
    directory = os.open(tag_dir, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def commit_problem(tag_dir: Path) -> str | None:
    """Why TAG_DIR is not a complete checkpoint (None: it is): no marker, or files missing or resized."""
    marker = tag_dir / COMMIT_MARKER
    if not marker.is_file():
        return "not committed (no marker: a save was interrupted)"
    try:
        expected = json.loads(marker.read_text())["files"]
    except (ValueError, KeyError, TypeError) as err:
        return f"unreadable commit marker: {err}"
    for name, size in expected.items():
        path = tag_dir / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} is {path.stat().st_size} bytes, {size} when committed"
    return None


def checkpoint_tags(ckpt_dir: Path) -> list[str]:
    """Tag folders in CKPT_DIR, newest (highest step) first."""
    if not ckpt_dir.is_dir():
        return []
    return sorted((p.name for p in ckpt_dir.glob(f"{TAG_PREFIX}*") if p.is_dir()), reverse=True)


def latest_tag(ckpt_dir: Path) -> str | None:
    """The newest complete checkpoint of CKPT_DIR; newer incomplete ones are logged and passed over."""
    for tag in checkpoint_tags(ckpt_dir):
        problem = commit_problem(ckpt_dir / tag)
        if problem is None:
            return tag
        log.warning("checkpoint %s skipped: %s", ckpt_dir / tag, problem)
    return None


def save_checkpoint(engine, ckpt_dir: Path, step: int, train_state: dict[str, Any], keep: int) -> str:
    """Save a resumable checkpoint at optimizer step `step` (call on every rank); it counts once rank 0 has
    written its commit marker, after every rank finished. Then prune to the `keep` newest committed ones."""
    tag = tag_for(step)
    rank, world_size = rank_and_world()
    tag_dir = ckpt_dir / tag
    if rank == 0 and tag_dir.exists():
        shutil.rmtree(tag_dir)  # left by an abandoned attempt past the resumed step: never mix its files
    barrier()
    tag_dir.mkdir(parents=True, exist_ok=True)
    torch.save(rng_state(), tag_dir / f"rng_rank{rank}.pt")
    engine.save_checkpoint(
        str(ckpt_dir), tag=tag, client_state={"train_state": train_state}, save_latest=False
    )
    barrier()  # every rank's shards and RNG file are on disk
    if rank == 0:
        write_commit_marker(tag_dir, step, world_size)
        prune_checkpoints(ckpt_dir, keep)
    barrier()  # nobody reads or resumes before the commit is visible
    log.info("checkpoint %s committed", tag_dir)
    return tag


def prune_checkpoints(ckpt_dir: Path, keep: int) -> None:
    """Keep the `keep` newest committed tags; drop older ones and any incomplete tag older than them."""
    committed = [tag for tag in checkpoint_tags(ckpt_dir) if commit_problem(ckpt_dir / tag) is None]
    if not committed:
        return
    kept = set(committed[:keep])
    for tag in checkpoint_tags(ckpt_dir):
        if tag not in kept and tag < committed[0]:
            shutil.rmtree(ckpt_dir / tag, ignore_errors=True)


def load_latest_checkpoint(engine, ckpt_dir: Path) -> dict[str, Any] | None:
    """Restore engine (weights, optimizer, LR schedule) and this rank's RNG from the newest committed
    checkpoint; rank 0 chooses it and every rank loads the same one.

    Returns the saved train state, or None when there is no committed checkpoint yet (a fresh start).
    """
    rank, _ = rank_and_world()
    choice = [latest_tag(ckpt_dir) if rank == 0 else None]
    if dist.is_initialized():
        dist.broadcast_object_list(choice, src=0)
    tag = choice[0]
    if tag is None:
        return None
    path, client_state = engine.load_checkpoint(str(ckpt_dir), tag=tag)
    if path is None:
        return None
    set_rng_state(torch.load(ckpt_dir / tag / f"rng_rank{rank}.pt", weights_only=False))
    log.info("resumed from %s", path)
    return client_state["train_state"]


def last_activity(run_dir: Path) -> float:
    """When a run folder last committed a checkpoint (else when the folder itself changed)."""
    times = [marker.stat().st_mtime for marker in run_dir.rglob(COMMIT_MARKER)]
    return max(times, default=run_dir.stat().st_mtime)


def prune_old_runs(parent: Path, current: Path, keep_runs: int, min_age_s: float) -> list[Path]:
    """Retention on the checkpoint volume: of the run folders in PARENT (one per stage config and inputs, or
    one per PyTorchJob), keep CURRENT and the newest others up to `keep_runs` in all; delete the rest unless
    they were active within `min_age_s` (another run may still be training there). keep_runs 0 = keep all.
    Returns the deleted folders."""
    if keep_runs <= 0 or not parent.is_dir():
        return []
    others = [
        path
        for path in parent.iterdir()
        if path.is_dir() and path.name != RUNS_FOLDER and path.resolve() != current.resolve()
    ]
    others.sort(key=last_activity, reverse=True)
    now = time.time()
    deleted = []
    for run_dir in others[max(keep_runs - 1, 0) :]:
        if now - last_activity(run_dir) < min_age_s:
            continue
        shutil.rmtree(run_dir, ignore_errors=True)
        deleted.append(run_dir)
        log.info("retention: deleted old run checkpoints %s", run_dir)
    return deleted


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
