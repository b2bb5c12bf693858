"""One curriculum stage: the same `kangaroo train` entry point in the pod, or as a PyTorchJob across nodes."""

from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components.image import project_component


@project_component
def train_stage(
    params_yaml: str,
    profile: str,
    overrides: list[str],
    stage: str,
    stages: list[str],
    corpus_uri: str,
    dataset: Input[Dataset],
    dataset_version: str,
    resume_from: str,
    checkpoint_root: str,
    num_gpus: int,
    num_nodes: int,
    model: Output[Model],
    metrics: Output[Metrics],
    init_model: Input[Model] | None = None,
):
    """Train `stage` from `init_model` (None = fresh weights, or `resume_from` if set); a stage not listed in
    `stages` passes its input model through. Checkpoints go under `checkpoint_root` (a PVC on the cluster)
    so a pre-empted pod resumes where it stopped."""
    import json
    from pathlib import Path

    from kangaroo.config import load_params_text
    from kangaroo.storage.artifact_versioning import dataset_in_workspace
    from kangaroo.train.launch import run_stage

    params = load_params_text(params_yaml, profile, overrides)
    summary = run_stage(
        params=params,
        stage=stage,
        enabled=stage in stages,
        corpus_dir=corpus_uri,
        dataset_dir=str(dataset_in_workspace(dataset.path)),
        init_from=init_model.path if init_model is not None else (resume_from or None),
        out_dir=model.path,
        checkpoint_root=checkpoint_root or None,
        num_gpus=int(num_gpus),
        num_nodes=int(num_nodes),
        dataset_version=dataset_version,
    )
    for key in ("final_loss", "first_loss", "steps", "tokens", "padding_fraction", "wall_time_s"):
        if isinstance(summary.get(key), (int, float)):
            metrics.log_metric(key, float(summary[key]))
    # The metadata is what the UI shows; the file makes the step cacheable (a cache entry needs it).
    Path(metrics.path).write_text(json.dumps(metrics.metadata, indent=2))
    model.metadata.update({"stage": stage, "dataset_version": dataset_version})
