"""Where each curriculum stage of the run executes (kangaroo.k8s.placement): skipped, a TrainJob launched from
the CPU pool, or the task's own GPU pod. One CPU task per run; the pipeline branches on its outputs."""

from typing import NamedTuple

from components.image import project_component


@project_component
def plan_training(
    step_config: str,
    stages: list[str],
    num_nodes: int,
) -> NamedTuple(
    "StagePlacement",
    # the curriculum's stage names (kangaroo.train.settings.STAGE_NAMES; tests/test_pipeline_ir.py checks)
    [
        ("image_text_pretrain", str),
        ("video_text_pretrain", str),
        ("pretrain_refinement", str),
        ("instruction_tuning", str),
        ("long_video_tuning", str),
    ],
):
    """`skip` / `cluster_job` / `pod` for every stage; an unknown name in `stages` fails the run here."""
    from collections import namedtuple

    from kangaroo.config import load_params_text
    from kangaroo.k8s.placement import plan_stages

    cluster = load_params_text(step_config).cluster
    plan = plan_stages(list(stages), int(num_nodes), cluster)
    return namedtuple("StagePlacement", list(plan))(**plan)
