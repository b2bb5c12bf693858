"""Run reports: the exit handler publishes the outcome even when a step failed; the last step lists where the
run's outputs are."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Markdown, Model, Output

from components.image import project_component


@project_component
def publish_run_summary(status: dsl.PipelineTaskFinalStatus, run_summary: Output[Markdown]):
    import logging

    lines = [
        "# kangaroo-flow run",
        f"- pipeline job: `{status.pipeline_job_resource_name}`",
        f"- state: **{status.state}**",
    ]
    if status.error_message:
        lines.append(f"- error: {status.error_message}")
    text = "\n".join(lines) + "\n"
    with open(run_summary.path, "w") as handle:
        handle.write(text)
    logging.getLogger("kangaroo.run").info("run finished: %s", status.state)


@project_component
def list_run_outputs(
    quality_report: Input[HTML],
    quality_summary: Input[Markdown],
    model: Input[Model],
    results: Input[Dataset],
    run_outputs: Output[Markdown],
):
    """Where this run's report, model and metrics live. A cached step's outputs stay where the run that
    computed them put them, so only the artifacts' URIs say where to look (never cached itself)."""
    where = {
        "quality report (HTML)": quality_report.uri,
        "quality summary": quality_summary.uri,
        "model": model.uri,
        "evaluation metrics": f"{results.uri}/metrics.json",
        "predictions": f"{results.uri}/predictions.jsonl",
    }
    lines = ["# kangaroo-flow run outputs", "", "| output | location |", "|---|---|"]
    lines += [f"| {label} | `{uri}` |" for label, uri in where.items()]
    with open(run_outputs.path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    run_outputs.metadata.update(where)
