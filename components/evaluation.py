"""Evaluate a checkpoint on a multiple-choice benchmark; metrics show in the Kubeflow UI."""

from kfp.dsl import ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components.image import project_component


@project_component
def model_evaluation(
    step_config: str,
    model: Input[Model],
    benchmark: str,
    results: Output[Dataset],
    metrics: Output[Metrics],
    confusion: Output[ClassificationMetrics],
) -> float:
    """Score `model` on `benchmark` (e.g. `sample:<corpus dir>`); returns the headline accuracy."""
    import json
    from pathlib import Path

    from kangaroo.config import load_params_text
    from kangaroo.eval.runner import evaluate_checkpoint

    params = load_params_text(step_config)
    result = evaluate_checkpoint(model.path, benchmark, results.path, params)
    for name, value in result.flat_metrics().items():
        metrics.log_metric(name, value)
    confusion.log_confusion_matrix(result.confusion_labels, result.confusion_matrix)
    # The metadata is what the UI shows; the files make the step cacheable (a cache entry needs them).
    Path(metrics.path).write_text(json.dumps(result.flat_metrics(), indent=2))
    Path(confusion.path).write_text(json.dumps(confusion.metadata, indent=2))
    return float(result.accuracy)


@project_component
def register_model(model: Input[Model], accuracy: float, dataset_version: str, registered: Output[Model]):
    """Copy the final checkpoint to the registry location with its lineage (dataset version, accuracy)."""
    from kangaroo.model.build import checkpoint_folder
    from kangaroo.model.registry import register_checkpoint

    card = register_checkpoint(
        checkpoint_folder(model.path), registered.path, accuracy=accuracy, dataset_version=dataset_version
    )
    registered.metadata.update(card)
