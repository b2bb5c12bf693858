"""The training recipe: one curriculum stage, top to bottom (torchtune/nanoGPT style, no hidden trainer).

    setup      rank env + process group, seeds, the model (previous stage's output or fresh), freezing
    data       packed data index -> the stage's samples and lengths -> seeded packed-row plan -> DataLoader
               workers that fetch shards and decode rows (kangaroo.train.stream)
    engine     torch AdamW + warmup/decay schedule handed to deepspeed.initialize (ZeRO, bf16, accumulation)
    resume     newest DeepSpeed checkpoint: weights, optimizer, schedule, sampler position, RNG
    loop       one packed row per micro-batch, `gradient_accumulation` micro-batches per optimizer step
    finish     final checkpoint, consolidated `save_pretrained` folder, summary.json
    phases     a stage with `phases` runs setup-to-finish once per phase, each from the last one's model

Runs the same as a single process, under `torchrun` and under the `deepspeed` launcher; every rank calls
`train_stage`, rank 0 writes the logs and the exported model.

Output folder: `model/` (HF folder with processor), `checkpoints/`, `metrics.jsonl`, `tensorboard/`,
`summary.json`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import signal
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from kangaroo.config import Params
from kangaroo.train.checkpointing import (
    consolidated_state_dict,
    export_pretrained,
    latest_tag,
    load_latest_checkpoint,
    save_checkpoint,
    tag_for,
)
from kangaroo.train.deepspeed_config import deepspeed_config, ensure_rank_env
from kangaroo.train.errors import TrainInputError
from kangaroo.train.freezing import apply_trainable_groups
from kangaroo.train.metrics_log import MetricsLog
from kangaroo.train.optimizer import adamw
from kangaroo.train.sampler import PackedRowSampler
from kangaroo.train.settings import STAGE_NAMES, StageSettings
from kangaroo.train.stream import PackedRowStream, next_row, row_loader, stage_index
from kangaroo.train.threads import set_intra_op_threads

log = logging.getLogger(__name__)

# Fault injection for the kill-and-resume test and for pre-emption drills: SIGKILL this process right after
# the given optimizer step (after its checkpoint, if one is due), exactly like a pre-empted node.
KILL_AFTER_STEP_ENV = "KANGAROO_TRAIN_KILL_AFTER_STEP"
RUNTIME_SKIPS = (
    "undecodable",
    "resource_limit",
    "length_mismatch",
)  # counted by the data workers while training


def train_stage(
    params: Params,
    stage_name: str,
    out_dir: Path,
    data: str | Path,
    init: str | None = None,
    resume: bool = False,
    max_steps: int | None = None,
    checkpoint_dir: Path | None = None,
    dataset_version: str | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Train one curriculum stage; returns the summary (also written to OUT/summary.json on rank 0).

    data: packed training data (`kangaroo pack` output), a folder or an s3:// prefix.
    init: a model folder, "scratch" (fresh weights from the `model:` block) or None (the stage's `init_from`).
    max_steps: overrides the stage's step budget (tests and smoke runs).

    A stage with `phases` makes one run per phase, each from the previous phase's weights; a phase's
    checkpoints and model live in CHECKPOINT_DIR/phase-<name>/, so a resumed stage skips finished phases.
    """
    started = time.perf_counter()
    stage = params.train.stage(stage_name)
    runs = stage.runs(max_steps)
    out_dir = Path(out_dir)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else out_dir / "checkpoints"

    # packed data first: a wrong URI, endpoint or credential fails in seconds, before any model is built
    from kangaroo.packed.reader import PackedData

    packed = PackedData.open(data, params.storage, params.train.data.cache_dir)

    ensure_rank_env()
    import deepspeed

    if not dist.is_initialized():
        deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")
    rank, world_size = dist.get_rank(), dist.get_world_size()
    set_intra_op_threads(params.train.torch_threads)
    init_source = resolve_init(stage, stage_name, init, out_dir)

    results: list[dict[str, Any]] = []
    source = init_source
    for number, (phase, settings) in enumerate(runs, start=1):
        final = number == len(runs)
        run_dir = checkpoint_dir if phase is None else checkpoint_dir / f"phase-{phase}"
        model_dir = out_dir / "model" if final else run_dir / "model"
        finished = run_dir / PHASE_SUMMARY
        if resume and not final and finished.is_file():
            log.info("stage %s phase %s finished earlier: %s", stage_name, phase, model_dir)
            results.append(json.loads(finished.read_text()))
        else:
            if phase is not None:
                log.info("stage %s phase %d/%d: %s", stage_name, number, len(runs), phase)
            result = train_run(
                params,
                RunPlan(stage_name, phase, settings, source, model_dir, run_dir),
                packed,
                out_dir,
                resume=resume,
                step_offset=sum(r["steps"] for r in results),
                show_progress=show_progress,
            )
            results.append(result)
            if rank == 0 and not final:
                finished.write_text(json.dumps(result, indent=2) + "\n")
        dist.barrier()  # every rank loads the next phase from the model rank 0 exported
        source = str(model_dir)

    summary: dict[str, Any] = {}
    if rank == 0:
        summary = stage_summary(results, time.perf_counter() - started)
        summary.update(
            stage=stage_name,
            profile=params.profile,
            init=init_source,
            dataset_version=dataset_version,
            data=packed.uri,
            world_size=world_size,
        )
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        log.info(
            "stage %s done: %d steps, final loss %.4f -> %s",
            stage_name,
            summary["steps"],
            summary["final_loss"] or float("nan"),
            out_dir / "model",
        )
    dist.barrier()
    return summary


PHASE_SUMMARY = "summary.json"  # in a finished phase's folder: its run summary (a resumed stage skips it)


class RunPlan(NamedTuple):
    """One run of a stage: the whole stage, or one of its phases."""

    stage_name: str
    phase: str | None
    settings: StageSettings
    init_source: str  # "scratch" or a model folder
    model_dir: Path  # where the run's model is exported
    checkpoint_dir: Path


def train_run(
    params: Params,
    plan: RunPlan,
    packed,
    out_dir: Path,
    resume: bool,
    step_offset: int,
    show_progress: bool,
) -> dict[str, Any]:
    """Train PLAN from its init model to its step budget (or resume it) and export its model; returns the
    run's summary. Metrics rows go to OUT_DIR/metrics.jsonl numbered from STEP_OFFSET (earlier phases)."""
    started = time.perf_counter()
    stage, stage_name, checkpoint_dir = plan.settings, plan.stage_name, plan.checkpoint_dir
    data_settings = params.train.data
    rank, world_size = dist.get_rank(), dist.get_world_size()
    seed_everything(params.train.seed)
    if params.train.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    model, processor = load_initial_model(params, plan.init_source)
    trainable_counts = apply_trainable_groups(model, stage.trainable)
    if stage.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    # ---- data: index -> stage samples and lengths -> seeded, resumable row plan ----
    index = stage_index(packed, stage, processor)
    skipped = dict(index.skipped)
    sampler = PackedRowSampler(
        index.length,
        stage.context_length,
        params.train.seed,
        stage.packing,
        rank,
        world_size,
        groups=index.shard,
        window=data_settings.window_shards,
    )
    accumulation = stage.gradient_accumulation(world_size)
    total_steps = stage.max_steps or max(1, math.ceil(stage.epochs * sampler.rows_per_rank() / accumulation))
    log.info(
        "stage %s%s: %d samples (%s skipped), %d rows/epoch/rank, utilisation %.3f, "
        "%d steps x %d micro-batches x %d ranks",
        stage_name,
        f" phase {plan.phase}" if plan.phase else "",
        len(index),
        skipped or "none",
        sampler.rows_per_rank(),
        sampler.epoch_utilisation(),
        total_steps,
        accumulation,
        world_size,
    )

    # ---- engine: optimizer + schedule + DeepSpeed ----
    import deepspeed

    optimizer = build_optimizer(model, stage)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(stage, total_steps))
    num_parameters = sum(p.numel() for p in model.parameters())
    engine, _, _, _ = deepspeed.initialize(
        model=model,
        optimizer=optimizer,
        lr_scheduler=scheduler,
        config=deepspeed_config(stage, world_size, num_parameters),
    )
    pixel_dtype = torch.bfloat16 if engine.bfloat16_enabled() else torch.float32

    # ---- resume ----
    state = {"step": 0, "tokens": 0, "slots": 0, "samples": 0, "frames": 0, "wall_time_s": 0.0}
    state["first_loss"] = None
    restored = load_latest_checkpoint(engine, checkpoint_dir) if resume else None
    if restored is not None:
        state = restored["counters"]
        sampler.load_state_dict(restored["sampler"])
        log.info("resuming at step %d of %d", state["step"], total_steps)
    elif resume:
        log.info("no checkpoint in %s: starting from the beginning", checkpoint_dir)
    state.setdefault("skipped", {})
    # one metrics.jsonl per stage: the rows of earlier phases and of the resumed steps stay, numbering goes on
    logged_steps = step_offset + state["step"]
    metrics = MetricsLog(out_dir, enabled=rank == 0, resume_step=logged_steps or None)
    kill_after = int(os.environ.get(KILL_AFTER_STEP_ENV, "0") or 0)

    # ---- loop: rows come from DataLoader workers, in the sampler's order from its restored position ----
    stream = PackedRowStream(packed, index, sampler, stage, params.video, processor)
    rows = iter(row_loader(stream, data_settings.workers, data_settings.prefetch_rows))
    engine.train()
    progress = tqdm(
        total=total_steps,
        initial=state["step"],
        desc=f"{stage_name}/{plan.phase}" if plan.phase else stage_name,
        disable=not show_progress or rank != 0,
    )
    last_loss = None
    first_step_s = None  # seconds from the run's start to its first optimizer step in this process
    while state["step"] < total_steps:
        step_start = time.perf_counter()
        window = torch.zeros(5, dtype=torch.float64)  # loss sum, real tokens, slots, samples, frames
        for _ in range(accumulation):
            streamed = next_row(rows, sampler)
            for reason, count in streamed.skipped.items():
                state["skipped"][reason] = state["skipped"].get(reason, 0) + count
            row = streamed.batch
            inputs = row.model_inputs()
            if "pixel_values" in inputs:
                inputs["pixel_values"] = inputs["pixel_values"].to(pixel_dtype)
            loss = engine(**inputs).loss
            engine.backward(loss)
            engine.step()
            window += torch.tensor(
                [loss.item(), row.real_tokens, stage.context_length, row.num_samples, row.num_frames],
                dtype=torch.float64,
            )
        dist.all_reduce(window)  # sums over ranks
        elapsed = time.perf_counter() - step_start
        first_step_s = first_step_s or time.perf_counter() - started
        state["step"] += 1
        last_loss = window[0].item() / (accumulation * world_size)
        state["first_loss"] = last_loss if state["first_loss"] is None else state["first_loss"]
        state["tokens"] += int(window[1])
        state["slots"] += int(window[2])
        state["samples"] += int(window[3])
        state["frames"] += int(window[4])
        state["wall_time_s"] += elapsed
        if state["step"] % params.train.log_every == 0 or state["step"] == total_steps:
            row_metrics = {
                "step": step_offset + state["step"],
                "epoch": sampler.epoch,
                "loss": last_loss,
                "lr": scheduler.get_last_lr()[0],
                "tokens_per_s": window[1].item() / elapsed,
                "padding_fraction": 1.0 - window[1].item() / window[2].item(),
                "frames_per_sample": window[4].item() / max(window[3].item(), 1.0),
                "tokens": state["tokens"],
            }
            metrics.log(row_metrics | ({"phase": plan.phase} if plan.phase else {}))
        progress.update(1)
        progress.set_postfix(loss=f"{last_loss:.3f}")
        if stage.checkpoint_every and state["step"] % stage.checkpoint_every == 0:
            save_checkpoint(
                engine, checkpoint_dir, state["step"], train_state(state, sampler), stage.keep_checkpoints
            )
        if kill_after and step_offset + state["step"] == kill_after:
            log.warning("%s=%d: killing this process (pre-emption drill)", KILL_AFTER_STEP_ENV, kill_after)
            os.kill(os.getpid(), signal.SIGKILL)
    progress.close()
    if last_loss is None:
        last_loss = _last_logged_loss(metrics)
    metrics.close()
    del rows  # stops the DataLoader workers
    # every rank skipped its own rows' broken samples: the summary counts all of them
    runtime = torch.tensor([state["skipped"].get(r, 0) for r in RUNTIME_SKIPS], dtype=torch.float64)
    dist.all_reduce(runtime)
    for reason, count in zip(RUNTIME_SKIPS, runtime.tolist(), strict=True):
        if count:
            skipped[reason] = skipped.get(reason, 0) + int(count)
    if skipped:
        log.warning("stage %s skipped samples: %s", stage_name, skipped)

    # ---- finish: final checkpoint, consolidated model ----
    final_tag = tag_for(state["step"])
    if latest_tag(checkpoint_dir) != final_tag:
        save_checkpoint(
            engine, checkpoint_dir, state["step"], train_state(state, sampler), stage.keep_checkpoints
        )
    dist.barrier()
    if rank == 0:
        weights = consolidated_state_dict(engine, checkpoint_dir, final_tag, stage.zero_stage)
        export_pretrained(engine, processor, weights, plan.model_dir)
    result = {
        "phase": plan.phase,
        "steps": state["step"],
        "first_loss": state["first_loss"],
        "final_loss": last_loss,
        "tokens": state["tokens"],
        "slots": state["slots"],
        "frames": state["frames"],
        "num_samples": len(index),
        "samples_trained": state["samples"],
        "skipped_samples": skipped,
        "gradient_accumulation": accumulation,
        "tokens_per_step": stage.context_length * accumulation * world_size,
        "trainable_parameters": trainable_counts,
        "packing": stage.packing,
        "wall_time_s": state["wall_time_s"],
        "process_time_s": time.perf_counter() - started,
        "time_to_first_step_s": first_step_s,
    }
    return result


def stage_summary(results: list[dict[str, Any]], process_time_s: float) -> dict[str, Any]:
    """The stage's summary.json fields from its runs (one per phase): totals over the phases, losses of the
    first and last, and the phases themselves when there are several."""
    first, last = results[0], results[-1]
    tokens, slots = sum(r["tokens"] for r in results), sum(r["slots"] for r in results)
    samples = sum(r["samples_trained"] for r in results)
    skipped: dict[str, int] = {}
    for result in results:
        for reason, count in result["skipped_samples"].items():
            skipped[reason] = skipped.get(reason, 0) + count
    summary = {
        "steps": sum(r["steps"] for r in results),
        "first_loss": first["first_loss"],
        "final_loss": last["final_loss"],
        "tokens": tokens,
        "padding_fraction": 1.0 - tokens / max(slots, 1),
        "frames_per_sample": sum(r["frames"] for r in results) / max(samples, 1),
        "num_samples": last["num_samples"],
        "samples_trained": samples,
        "skipped_samples": skipped,  # summed over the phases
        "gradient_accumulation": last["gradient_accumulation"],
        "tokens_per_step": last["tokens_per_step"],
        "trainable_parameters": last["trainable_parameters"],
        "packing": last["packing"],
        "wall_time_s": sum(r["wall_time_s"] for r in results),
        "process_time_s": process_time_s,
        "time_to_first_step_s": first["time_to_first_step_s"],
    }
    if len(results) > 1:
        summary["phases"] = results
    return summary


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_init(stage: StageSettings, stage_name: str, init: str | None, out_dir: Path) -> str:
    """ "scratch" or a model folder. Default "previous" = `<out_dir>/../<previous stage>/model`."""
    choice = init or stage.init_from
    if choice.lower() in ("scratch", "none"):
        return "scratch"
    if choice == "previous":
        index = STAGE_NAMES.index(stage_name)
        if index == 0:
            return "scratch"
        choice = str(out_dir.parent / STAGE_NAMES[index - 1] / "model")
    from kangaroo.model.build import ModelBuildError, checkpoint_folder

    try:
        return str(checkpoint_folder(choice))  # a model folder, or a stage output folder holding model/
    except ModelBuildError as err:
        raise TrainInputError(f"init model {choice}: {err}; pass --init") from err


def load_initial_model(params: Params, init_source: str):
    """(model, processor): freshly built from the `model:` block, or loaded from a saved folder (fp32) with
    the block's attention kernel (a saved config does not carry one)."""
    from kangaroo.model import build_model_and_processor, load_model_and_processor

    if init_source == "scratch":
        return build_model_and_processor(params.model)
    return load_model_and_processor(
        init_source, dtype=torch.float32, attn_implementation=params.model.attn_implementation
    )


def build_optimizer(model: torch.nn.Module, stage: StageSettings) -> torch.optim.Optimizer:
    """torch AdamW over the trainable parameters; no weight decay on biases and norms (1-D tensors); each
    module group at `lr` times its `lr_scale`. The schedule multiplies every group's LR alike."""
    scale_of = {
        id(parameter): stage.lr_scale.get(name, 1.0)
        for name, module in model.module_groups().items()
        for parameter in module.parameters()
    }
    grouped: dict[tuple[float, bool], list[torch.nn.Parameter]] = {}
    for parameter in model.parameters():
        if parameter.requires_grad:
            key = (scale_of.get(id(parameter), 1.0), parameter.ndim >= 2)
            grouped.setdefault(key, []).append(parameter)
    # the unscaled groups first (the logged LR is group 0's), weight-decayed before not
    keys = sorted(grouped, key=lambda key: (key[0] != 1.0, key[0], not key[1]))
    groups = [
        {
            "params": grouped[key],
            "lr": stage.lr * key[0],
            "weight_decay": stage.weight_decay if key[1] else 0.0,
        }
        for key in keys
    ]
    return adamw(groups, lr=stage.lr, betas=stage.adam_betas)


def lr_lambda(stage: StageSettings, total_steps: int):
    """LR multiplier per optimizer step: linear warmup, then cosine/linear decay to `min_lr_ratio`."""
    warmup = int(round(stage.warmup_ratio * total_steps))

    def multiplier(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if stage.lr_schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        decay = 0.5 * (1 + math.cos(math.pi * progress)) if stage.lr_schedule == "cosine" else 1 - progress
        return stage.min_lr_ratio + (1 - stage.min_lr_ratio) * decay

    return multiplier


def train_state(counters: dict[str, Any], sampler: PackedRowSampler) -> dict[str, Any]:
    return {"counters": dict(counters), "sampler": sampler.state_dict()}


def _last_logged_loss(metrics: MetricsLog) -> float | None:
    rows = metrics.rows() if metrics.enabled else []
    return rows[-1]["loss"] if rows else None
