"""Entry point the KFP component and the CLI share: run one stage in this process, or spawn `torchrun`.

Inside a launcher (torchrun, the deepspeed launcher, a TrainJob node: RANK/WORLD_SIZE set) or with one GPU
the stage runs in this process. With several GPUs and no launcher, `torchrun --nproc_per_node` is spawned
on `kangaroo train` with the same arguments, and its summary.json is returned. A cluster job (several nodes,
or `cluster_job=True`) is submitted as a Trainer v2 TrainJob and followed from this (CPU) process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from kangaroo.config import Params, write_resolved_params
from kangaroo.k8s.launch_command import torchrun_command, train_arguments
from kangaroo.k8s.settings import ClusterSettings
from kangaroo.train.checkpointing import prune_old_runs

log = logging.getLogger(__name__)


def run_stage(
    params: Params,
    stage: str,
    out_dir: str | Path,
    data: str | Path | None = None,
    init_from: str | None = None,
    enabled: bool = True,
    resume: bool = True,
    checkpoint_root: str | Path | None = None,
    num_gpus: int = 1,
    num_nodes: int = 1,
    dataset_version: str | None = None,
    max_steps: int | None = None,
    cluster_job: bool = False,
    cluster: ClusterSettings | None = None,
    checkpoint_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Train `stage` into OUT (model/, metrics.jsonl, summary.json); checkpoints under
    CHECKPOINT_ROOT/<stage>/<run fingerprint> (default OUT/checkpoints), resuming from the newest one
    (pre-empted pods). With cluster_job (or num_nodes > 1 and no launcher around) the stage runs as a
    cluster job (kangaroo.k8s.multinode) and this process only launches and follows it.

    enabled=False passes the init model through unchanged (a stage skipped in this run). CLUSTER (default
    `params.cluster`) is where a cluster job goes: a stage's own resolved config holds no placement.
    CHECKPOINT_DIR (`kangaroo train --checkpoints`, what torchrun ranks get) is the exact checkpoint folder.
    """
    out = Path(out_dir)
    if not enabled:
        return pass_through(stage, init_from, out)
    under_launcher = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    if checkpoint_dir is not None:
        checkpoint_dir = Path(checkpoint_dir)
    elif checkpoint_root:
        fingerprint = run_fingerprint(params, stage, init_from, data, dataset_version, max_steps)
        checkpoint_dir = Path(checkpoint_root) / stage / fingerprint
        if not under_launcher:  # the runs of other configs or code on the shared volume
            prune_old_runs(
                checkpoint_dir.parent,
                checkpoint_dir,
                params.train.checkpoint_keep_runs,
                params.train.checkpoint_prune_after_h * 3600,
            )
    if cluster_job or (num_nodes > 1 and not under_launcher):
        # Trainer v2 runs the same `kangaroo train` under torchrun in each node of a TrainJob.
        from kangaroo.k8s.multinode import run_stage_as_cluster_job

        return run_stage_as_cluster_job(
            params,
            stage,
            out,
            data=data,
            init_from=init_from,
            checkpoint_root=checkpoint_root,
            num_gpus=num_gpus,
            num_nodes=num_nodes,
            dataset_version=dataset_version,
            max_steps=max_steps,
            resume=resume,
            cluster=cluster,
        )
    if num_gpus > 1 and not under_launcher:
        return spawn_torchrun(
            params,
            stage,
            out,
            data,
            init_from,
            resume,
            checkpoint_dir,
            num_gpus,
            dataset_version,
            max_steps,
        )
    from kangaroo.train.loop import train_stage

    return train_stage(
        params,
        stage,
        out,
        data=data,
        init=init_from,
        resume=resume,
        max_steps=max_steps,
        checkpoint_dir=checkpoint_dir,
        dataset_version=dataset_version,
    )


def run_fingerprint(params: Params, stage: str, *inputs: object) -> str:
    """Names a stage's checkpoint folder on the shared volume: the same stage config, init model and data
    (a retried or pre-empted step) resume there; anything else, new code included, starts fresh instead of
    resuming a stranger."""
    from kangaroo.step_config import code_version_of

    identity = {
        "code": code_version_of(params),
        "stage": params.train.stage(stage).model_dump(mode="json"),
        "model": params.model.model_dump(mode="json"),
        "seed": params.train.seed,
        "inputs": [str(value) for value in inputs],
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def pass_through(stage: str, init_from: str | None, out: Path) -> dict[str, Any]:
    """Copy the init model to OUT/model and write a summary saying the stage was skipped."""
    from kangaroo.train.errors import TrainInputError

    if not init_from:
        raise TrainInputError(f"stage {stage} is disabled but no init model was given to pass through")
    from kangaroo.model.build import checkpoint_folder

    source = checkpoint_folder(init_from)
    shutil.copytree(source, out / "model", dirs_exist_ok=True)
    summary = {"stage": stage, "skipped": True, "init": str(source), "steps": 0}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def spawn_torchrun(
    params: Params,
    stage: str,
    out: Path,
    data,
    init_from,
    resume,
    checkpoint_dir,
    num_gpus: int,
    dataset_version,
    max_steps,
) -> dict[str, Any]:
    """Run `kangaroo train` under `torchrun --nproc_per_node num_gpus` with these exact params."""
    out.mkdir(parents=True, exist_ok=True)
    args = train_arguments(
        out,
        params_file=write_resolved_params(params, out / "params.yaml"),
        profile=params.profile,
        data=data,
        init=init_from,
        checkpoints=checkpoint_dir,
        dataset_version=dataset_version,
        max_steps=max_steps,
        resume=resume,
    )
    # The same entry point every TrainJob node runs, here as N processes on this node.
    command = torchrun_command(stage, args, nproc_per_node=num_gpus, bin_dir=Path(sys.executable).parent)
    log.info("launching %s", " ".join(command))
    subprocess.run(command, check=True)
    return json.loads((out / "summary.json").read_text())
