"""The caption quality gate: publishes the GX Data Docs as an HTML artifact and the summary as Markdown."""

from kfp.dsl import HTML, Dataset, Input, Markdown, Metrics, Model, Output

from components.image import project_component


@project_component
def quality_gate(
    step_config: str,
    dataset: Input[Dataset],
    alignment_model: Input[Model],
    report: Output[HTML],
    summary: Output[Markdown],
    gate_metrics: Output[Metrics],
) -> bool:
    """Run the Great Expectations checkpoint; True when every expectation passed."""
    import json
    import tempfile
    from pathlib import Path

    from kangaroo.config import load_params_text
    from kangaroo.quality.report import publish_single_file_report
    from kangaroo.quality.runner import run_quality_gate

    params = load_params_text(step_config)
    report_dir = tempfile.mkdtemp(prefix="quality-report-")
    result = run_quality_gate(
        dataset.path, report_dir, params.quality, alignment_model=alignment_model.path, params=params
    )
    publish_single_file_report(result, report.path, summary.path)
    gate_metrics.log_metric("expectations_failed", len(result.failed_expectations))
    gate_metrics.log_metric("gate_passed", int(result.success))
    # The metadata is what the UI shows; the file makes the step cacheable (a cache entry needs it).
    Path(gate_metrics.path).write_text(json.dumps(gate_metrics.metadata, indent=2))
    return bool(result.success)


@project_component
def stop_on_failed_gate(summary: Input[Markdown]):
    """End the run as failed, after the report artifacts were published, so nobody trains on bad captions."""
    from pathlib import Path

    from kangaroo.errors import KangarooError

    raise KangarooError("caption quality gate failed; training skipped.\n" + Path(summary.path).read_text())
