"""Task outputs passed into a `dsl.ParallelFor` body, for KFP's local runner.

kfp 2.17.0's local orchestrator builds each loop iteration by replacing *every* input of the loop task that
is another task's output parameter with the loop item, not only the loop's items. The curation loop takes
its shards from `plan-shards` and each shard task's config from `resolve-step-configs`, so the shard tasks
would get the shard index as their config. `make run` installs this: the iteration keeps its other task
outputs, resolved as the cluster backend resolves them.
"""

from __future__ import annotations

from typing import Any


def install() -> None:
    from kfp.local.orchestrator import task_spec_utils
    from kfp.pipeline_spec import pipeline_spec_pb2

    original = task_spec_utils.create_parameter_loop_iteration_task_spec
    if getattr(original, "keeps_other_task_outputs", False):
        return

    def iteration_task_spec(
        original_task_spec: pipeline_spec_pb2.PipelineTaskSpec, loop_item: Any, loop_task_name: str
    ) -> pipeline_spec_pb2.PipelineTaskSpec:
        items = original_task_spec.parameter_iterator.items.input_parameter
        kept = {
            name: spec
            for name, spec in original_task_spec.inputs.parameters.items()
            if spec.HasField("task_output_parameter") and name != items
        }
        iteration = original(original_task_spec, loop_item, loop_task_name)
        for name, spec in kept.items():
            iteration.inputs.parameters[name].CopyFrom(spec)
        return iteration

    iteration_task_spec.keeps_other_task_outputs = True
    task_spec_utils.create_parameter_loop_iteration_task_spec = iteration_task_spec
