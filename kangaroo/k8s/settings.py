"""Where and how steps run on Kubernetes: image, node pools, secrets, volumes. Read by the KFP pipeline,
the PyTorchJob generator and the manifests' tests, so pool names and taints live in one place."""

from typing import Literal

from pydantic import Field

from kangaroo.settings_base import Section


class Toleration(Section):
    key: str
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"


class NodePool(Section):
    node_selector: dict[str, str] = {}
    tolerations: list[Toleration] = []
    accelerator_type: str | None = None  # e.g. nvidia.com/gpu; None = CPU pool
    cpu_request: str = "1"
    cpu_limit: str = "2"
    memory_request: str = "2G"
    memory_limit: str = "8G"


class ClusterSettings(Section):
    image: str = "ghcr.io/kangaroo-flow/kangaroo:0.1.0"  # pinned tag; never `latest`
    namespace: str = "kangaroo"
    service_account: str = "kangaroo-pipeline-runner"  # every KFP task of a run: reads the params ConfigMap
    # Trusted steps and PyTorchJobs: a MinIO user limited to the bucket (never the root account).
    minio_secret: str = "kangaroo-minio-pipeline"
    # Steps that decode uploads: a MinIO user that reads raw/ and writes curated/ only (same Secret keys).
    curation_minio_secret: str = "kangaroo-minio-curation"
    # The account allowed to create PyTorchJobs; its token Secret is mounted into training steps only.
    trainer_service_account: str = "kangaroo-trainer"
    trainer_token_secret: str = "kangaroo-trainer-token"
    trainer_token_mount: str = "/var/run/secrets/kangaroo/trainer"
    # Secret key -> environment variable the storage module and DVC read.
    minio_secret_env: dict[str, str] = {
        "accesskey": "AWS_ACCESS_KEY_ID",
        "secretkey": "AWS_SECRET_ACCESS_KEY",
    }
    checkpoint_pvc: str = "kangaroo-checkpoints"
    checkpoint_mount: str = "/mnt/checkpoints"
    retries: int = 2  # pre-emptible GPU nodes: a killed stage resumes from its last checkpoint
    params_configmap: str = "kangaroo-params"
    run_as_user: int = Field(10001, gt=0)  # the image's non-root user
    training_priority_class: str = ""  # "" = no PriorityClass (clusters without manifests/overlays/gpu)
    curation_priority_class: str = ""
    pytorchjob_poll_s: float = Field(30.0, gt=0)
    pytorchjob_timeout_s: float = Field(259200.0, gt=0)
    pytorchjob_ttl_s: int = Field(86400, ge=0)
    cpu_pool: NodePool = NodePool()
    gpu_pool: NodePool = NodePool()
