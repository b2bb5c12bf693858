"""One curriculum stage: the same `kangaroo train` entry point in the pod, or as a TrainJob across nodes that
this task (then on the CPU pool) launches and follows."""

from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components.image import project_component


@project_component
def stage_training(
    step_config: str,
    stage: str,
    stages: list[str],
    data: Input[Dataset],
    data_uri: str,
    dataset_version: str,
    resume_from: str,
    checkpoint_root: str,
    num_gpus: int,
    num_nodes: int,
    model: Output[Model],
    metrics: Output[Metrics],
    init_model: Input[Model] | None = None,
    vision_tower: Input[Model] | None = None,
    cluster_job: bool = False,
    placement_config: str = "",
):
    """Train `stage` on packed data from `init_model` (None = fresh weights, or `resume_from` if set). The
    stage streams `data_uri` (an s3:// prefix of the same packed data) when set, else the versioned artifact
    `data` (dataset_versioning's workspace); a stage not listed in `stages` passes its input model through.
    With `cluster_job` the stage runs as a TrainJob on `num_nodes` nodes x `num_gpus` GPUs and this task only
    launches and follows it, with the cluster settings of `placement_config` (the placement step's resolved
    config, given to the launcher only: placement is not part of a stage's result). A fresh model loads
    `vision_tower` (vision_tower_pretraining's output) when that holds weights. Checkpoints go under
    `checkpoint_root` (a PVC on the cluster) so a pre-empted pod resumes where it stopped."""
    import json
    from pathlib import Path

    from kangaroo.config import load_params_text
    from kangaroo.storage.artifact_versioning import dataset_in_workspace
    from kangaroo.train.launch import run_stage
    from kangaroo.train.vision_tags import tower_overrides

    tower = vision_tower.path if vision_tower is not None else None
    params = load_params_text(step_config, None, tower_overrides(tower))
    cluster = load_params_text(placement_config).cluster if placement_config else None
    summary = run_stage(
        params=params,
        stage=stage,
        enabled=stage in stages,
        data=data_uri or str(dataset_in_workspace(data.path)),
        init_from=init_model.path if init_model is not None else (resume_from or None),
        out_dir=model.path,
        checkpoint_root=checkpoint_root or None,
        num_gpus=int(num_gpus),
        num_nodes=int(num_nodes),
        dataset_version=dataset_version,
        cluster_job=bool(cluster_job),
        cluster=cluster,
    )
    for key in ("final_loss", "first_loss", "steps", "tokens", "padding_fraction", "wall_time_s"):
        if isinstance(summary.get(key), (int, float)):
            metrics.log_metric(key, float(summary[key]))
    # The metadata is what the UI shows; the file makes the step cacheable (a cache entry needs it).
    Path(metrics.path).write_text(json.dumps(metrics.metadata, indent=2))
    model.metadata.update(
        {"stage": stage, "dataset_version": dataset_version, "data": data_uri or "versioned artifact"}
    )


@project_component
def vision_tower_pretraining(
    step_config: str,
    corpus_uri: str,
    tower: Output[Model],
    metrics: Output[Metrics],
):
    """Caption-tag pre-training of a fresh vision tower on the corpus's stills (`train.vision_pretrain`); when
    disabled (a pretrained `model.vision_model`, paper profile) it only records that."""
    import json
    from pathlib import Path

    from kangaroo.config import load_params_text
    from kangaroo.train.vision_tags import pretrain_vision_tower

    params = load_params_text(step_config)
    summary = pretrain_vision_tower(params, corpus_uri, tower.path)
    # every number of the summary (tag mAPs, losses, counts, time): no key list to keep in step with it
    for key, value in summary.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            metrics.log_metric(key, float(value))
    Path(metrics.path).write_text(json.dumps(summary, indent=2))
    tower.metadata.update({"enabled": bool(summary["enabled"])})
