"""`dsl.OneOf` over artifacts for KFP's local runner.

kfp 2.17.0's local orchestrator resolves `dsl.OneOf` for parameters (the branch that ran) but refuses it for
artifacts ("Expected 1 artifact in ArtifactSelectorSpec"), which the cluster backend supports. The pipeline
picks a training stage's model from whichever placement branch ran (skipped / TrainJob launcher / GPU pod),
so `make run` installs this: the same rule as the local runner's own parameter OneOf, applied to artifacts.
"""

from __future__ import annotations

from typing import Any


def resolve_artifact_oneof(cls, dag_outputs_spec, io_store) -> dict[str, Any]:
    """DAG output artifacts; a selector list with several entries (a OneOf) takes the one branch that ran."""
    outputs = {}
    for key, selector_spec in dag_outputs_spec.artifacts.items():
        found = []
        for selector in selector_spec.artifact_selectors:
            try:
                found.append(
                    io_store.get_task_output(selector.producer_subtask, selector.output_artifact_key)
                )
            except (KeyError, ValueError):  # that branch did not run
                continue
        if len(found) != 1:
            raise ValueError(
                f"dsl.OneOf output {key!r}: {len(found)} branches produced it, expected exactly one"
            )
        outputs[key] = found[0]
    return outputs


def install() -> None:
    from kfp.local.orchestrator.orchestrator_utils import OrchestratorUtils

    OrchestratorUtils.get_dag_output_artifacts = classmethod(resolve_artifact_oneof)
