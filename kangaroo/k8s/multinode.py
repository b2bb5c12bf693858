"""Run one training stage as a cluster job (Kubeflow Trainer v2 TrainJob, or a legacy PyTorchJob when
`cluster.training_api: pytorchjob`), from a launcher task on the CPU pool.

Every node must see the same files, so the stage's inputs (local packed data, init model), the exact
params and the stage output live on the shared checkpoint PVC (cluster.checkpoint_mount, mounted in the
launcher pod and in every node): CHECKPOINT_ROOT/<stage>/runs/<job>/. When the job succeeds, its output is
copied to OUT_DIR (the KFP output artifact) and its summary.json returned, like a single-node run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from kangaroo.config import write_resolved_params
from kangaroo.k8s.cluster_job import default_api_client, job_name
from kangaroo.k8s.errors import TrainingJobError
from kangaroo.k8s.launch_command import train_arguments
from kangaroo.k8s.pytorchjob import build_pytorchjob, run_pytorchjob
from kangaroo.k8s.trainjob import build_trainjob, launcher_owner_reference, run_trainjob
from kangaroo.train.checkpointing import RUNS_FOLDER, prune_old_runs

log = logging.getLogger(__name__)


def stage_job(
    params,
    stage: str,
    name: str,
    run: Path,
    *,
    num_gpus: int,
    num_nodes: int,
    inputs: dict[str, str | None] | None = None,
    dataset_version: str | None = None,
    max_steps: int | None = None,
    resume: bool = True,
    owner: dict[str, Any] | None = None,
    cluster=None,
) -> dict[str, Any]:
    """The TrainJob (or PyTorchJob) that trains STAGE from files under RUN on the shared volume.

    INPUTS: `train_arguments` keywords (data, init) already on the shared volume or URIs.
    On a pool without accelerators (num_gpus=0, a CPU dev cluster) it runs one gloo process per node.
    CLUSTER: the placement settings (default `params.cluster`).
    """
    cluster = cluster if cluster is not None else params.cluster
    args = train_arguments(
        run / "out",
        params_file=run / "params.yaml",
        profile=params.profile,
        checkpoints=run / "checkpoints",  # per job: a retry resumes, another run never picks them up
        dataset_version=dataset_version,
        max_steps=max_steps,
        resume=resume,
        **(inputs or {}),
    )
    pool = cluster.gpu_pool if num_gpus else cluster.cpu_pool
    if cluster.training_api == "pytorchjob":
        return build_pytorchjob(name, stage, args, num_nodes, num_gpus, cluster, pool=pool)
    return build_trainjob(name, stage, args, num_nodes, num_gpus, cluster, pool=pool, owner=owner)


def run_stage_as_cluster_job(
    params,
    stage: str,
    out_dir: str | Path,
    *,
    data: str | Path | None = None,
    init_from: str | Path | None = None,
    checkpoint_root: str | Path | None = None,
    num_gpus: int = 1,
    num_nodes: int = 2,
    dataset_version: str | None = None,
    max_steps: int | None = None,
    resume: bool = True,
    run_id: str | None = None,
    api_client=None,
    cluster=None,
) -> dict[str, Any]:
    """Train STAGE on NUM_NODES nodes x NUM_GPUS GPUs (`kangaroo train` under torchrun in each node) and
    return its summary.json. RUN_ID names the job (default: derived from OUT_DIR, which is stable across
    retries of the same KFP task, so a retried launcher follows the same job).
    Raises TrainingJobError (and subclasses) when the job cannot run or fails. CLUSTER: the placement
    settings (default `params.cluster`; a stage's resolved config holds none).
    """
    cluster = cluster if cluster is not None else params.cluster
    root = Path(checkpoint_root or cluster.checkpoint_mount)
    if not root.is_relative_to(cluster.checkpoint_mount):
        raise TrainingJobError(
            f"checkpoint_root {root}: a cluster job needs it on the shared PVC {cluster.checkpoint_pvc} "
            f"mounted at {cluster.checkpoint_mount}"
        )
    run_id = run_id or hashlib.sha1(str(Path(out_dir).resolve()).encode()).hexdigest()[:10]
    name = job_name(stage, run_id)
    run = root / stage / RUNS_FOLDER / name
    run.mkdir(parents=True, exist_ok=True)
    train = params.train
    prune_old_runs(run.parent, run, train.checkpoint_keep_runs, train.checkpoint_prune_after_h * 3600)
    write_resolved_params(params, run / "params.yaml")
    inputs = {
        "data": stage_input(data, run / "data", root),
        "init": stage_input(init_from, run / "init", root),
    }
    job = stage_job(
        params,
        stage,
        name,
        run,
        num_gpus=num_gpus,
        num_nodes=num_nodes,
        inputs=inputs,
        dataset_version=dataset_version,
        max_steps=max_steps,
        resume=resume,
        owner=launcher_owner_reference(cluster.namespace),
        cluster=cluster,
    )
    log.info(
        "stage %s: %d nodes x %d GPUs as %s %s (files under %s)",
        stage,
        num_nodes,
        num_gpus,
        job["kind"],
        name,
        run,
    )
    # the trainer account's token (mounted into the launcher task only) may create jobs; the run's may not
    api_client = api_client or default_api_client(cluster.trainer_token_mount)
    if job["kind"] == "PyTorchJob":
        run_pytorchjob(
            job,
            cluster.namespace,
            poll_s=cluster.job_poll_s,
            timeout_s=cluster.job_timeout_s,
            api_client=api_client,
        )
    else:
        run_trainjob(job, poll_s=cluster.job_poll_s, timeout_s=cluster.job_timeout_s, api_client=api_client)
    summary_file = run / "out" / "summary.json"
    if not summary_file.is_file():
        raise TrainingJobError(f"{job['kind']} {name} succeeded but wrote no {summary_file}")
    shutil.copytree(run / "out", out_dir, dirs_exist_ok=True)
    return json.loads(summary_file.read_text())


def stage_input(source: str | Path | None, destination: Path, shared_root: Path) -> str | None:
    """A local folder not yet on the shared volume is copied there; URIs (s3://...) and paths already on
    it are passed through."""
    if source is None:
        return None
    text = str(source)
    path = Path(text)
    if "://" in text or not path.exists() or path.resolve().is_relative_to(shared_root.resolve()):
        return text
    if path.is_dir():
        shutil.copytree(path, destination, dirs_exist_ok=True)
    else:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)
    return str(destination)
