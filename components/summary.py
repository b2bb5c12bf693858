"""Exit handler: publishes the run's outcome even when a step failed."""

from kfp import dsl
from kfp.dsl import Markdown, Output

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
