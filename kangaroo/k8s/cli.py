"""`kangaroo trainjob`: print the TrainJob a launcher would submit for a stage (to read, or to apply)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kangaroo.cli_options import Overrides, ParamsFile, Profile, resolve_params


def trainjob(
    stage: Annotated[str, typer.Option("--stage", help="Curriculum stage, e.g. instruction_tuning.")],
    num_nodes: Annotated[int, typer.Option("--num-nodes", help="Nodes of the job (>= 1).")] = 2,
    gpus_per_node: Annotated[
        int,
        typer.Option("--gpus-per-node", help="GPUs per node = torchrun processes per node; 0 = CPU pool."),
    ] = 8,
    run_id: Annotated[
        str, typer.Option("--run-id", help="Names the job and its folder on the checkpoint PVC.")
    ] = "manual",
    data: Annotated[
        str | None,
        typer.Option("--data", help="Packed training data (`kangaroo pack`): s3:// URI or a PVC folder."),
    ] = None,
    init: Annotated[
        str | None, typer.Option("--init", help="Model to start from: s3:// URI or a folder on the PVC.")
    ] = None,
    params_file: ParamsFile = None,
    profile: Profile = None,
    overrides: Overrides = None,
) -> None:
    """Print the Trainer v2 TrainJob YAML for STAGE on NUM_NODES x GPUS_PER_NODE (nothing is submitted).

    Its files live under cluster.checkpoint_mount/<stage>/runs/<job>/ on the shared PVC; the launcher puts
    params.yaml (and local inputs) there before it submits, so do the same before `kubectl apply -f`.
    --data/--init given as s3:// URIs are read by the job itself.
    """
    import yaml

    from kangaroo.k8s.cluster_job import job_name
    from kangaroo.k8s.errors import TrainingJobError
    from kangaroo.k8s.multinode import stage_job
    from kangaroo.train.settings import STAGE_NAMES

    if stage not in STAGE_NAMES:
        raise TrainingJobError(f"--stage {stage}: not a curriculum stage ({', '.join(STAGE_NAMES)})")
    if gpus_per_node < 0:
        raise TrainingJobError(f"--gpus-per-node {gpus_per_node}: must be >= 0")
    params = resolve_params(params_file, profile, [*(overrides or ()), "cluster.training_api=trainjob"])
    name = job_name(stage, run_id)
    run = Path(params.cluster.checkpoint_mount) / stage / "runs" / name
    inputs = {"data": data, "init": init}
    job = stage_job(params, stage, name, run, num_gpus=gpus_per_node, num_nodes=num_nodes, inputs=inputs)
    typer.echo(yaml.safe_dump(job, sort_keys=False, width=120), nl=False)
