"""Where each curriculum stage of a run executes, decided once per run from the pipeline's parameters:

- `skip`: not listed in `stages`; its input model is passed through by a CPU-pool task (no GPU pod starts),
- `cluster_job`: a TrainJob (or PyTorchJob) launched and followed by a CPU-pool task that requests no GPU,
  for stages on at least `cluster.cluster_job_min_nodes` nodes,
- `pod`: inside the KFP task's own GPU pod (torchrun --standalone for several GPUs).
"""

from __future__ import annotations

import logging
from typing import Literal

from kangaroo.k8s.settings import ClusterSettings
from kangaroo.train.settings import STAGE_NAMES

log = logging.getLogger(__name__)

Placement = Literal["skip", "cluster_job", "pod"]
PLACEMENTS: tuple[Placement, ...] = ("skip", "cluster_job", "pod")


class StagePlanError(ValueError):
    """`stages` names a stage the curriculum does not have."""


def stage_placement(stage: str, stages: list[str], num_nodes: int, cluster: ClusterSettings) -> Placement:
    if stage not in stages:
        return "skip"
    return "cluster_job" if num_nodes >= cluster.cluster_job_min_nodes else "pod"


def plan_stages(stages: list[str], num_nodes: int, cluster: ClusterSettings) -> dict[str, Placement]:
    """Placement of every curriculum stage; an unknown name in STAGES is an error (a typo would silently
    skip a stage otherwise)."""
    unknown = [stage for stage in stages if stage not in STAGE_NAMES]
    if unknown:
        raise StagePlanError(f"stages {unknown} are not curriculum stages {list(STAGE_NAMES)}")
    if num_nodes < 1:
        raise StagePlanError(f"num_nodes={num_nodes} must be >= 1")
    plan = {stage: stage_placement(stage, stages, num_nodes, cluster) for stage in STAGE_NAMES}
    log.info("stage placement: %s", ", ".join(f"{stage}={where}" for stage, where in plan.items()))
    return plan
