"""Where and how steps run on Kubernetes: image, node pools, secrets, volumes, how a stage runs across nodes.
Read by the KFP pipeline, the TrainJob/PyTorchJob generators and the manifests' tests, so pool names and
taints live in one place."""

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
    # The image repository; `make compile` refers to it by digest or a git-<commit> tag (pipelines/compile).
    image: str = "ghcr.io/kangaroo-flow/kangaroo:0.1.0"
    namespace: str = "kangaroo"
    service_account: str = "kangaroo-pipeline-runner"  # every KFP task of a run: reads the params ConfigMap
    # Trusted steps and PyTorchJobs: a MinIO user limited to the bucket (never the root account).
    minio_secret: str = "kangaroo-minio-pipeline"
    # Steps that decode uploads: a MinIO user that reads raw/ and writes curated/ only (same Secret keys).
    curation_minio_secret: str = "kangaroo-minio-curation"
    # The account allowed to create TrainJobs/PyTorchJobs; its token Secret is mounted into the launcher only.
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
    params_configmap: str = "kangaroo-params"  # params.yaml as a ConfigMap (`make manifests-config`)
    run_as_user: int = Field(10001, gt=0)  # the image's non-root user
    # PriorityClasses exist only with manifests/overlays/gpu; "" = none (a dev cluster).
    training_priority_class: str = ""
    curation_priority_class: str = ""
    # How a stage runs across nodes: a Kubeflow Trainer v2 TrainJob (default) or a legacy training-operator
    # PyTorchJob (kubeflow.org/v1, clusters that still run training-operator v1).
    training_api: Literal["trainjob", "pytorchjob"] = "trainjob"
    trainjob_runtime: str = (
        "kangaroo-torch-distributed"  # the ClusterTrainingRuntime of manifests/base/trainer
    )
    # Stages on at least this many nodes run as a cluster job launched from the CPU pool; 1 = every stage.
    cluster_job_min_nodes: int = Field(2, ge=1)
    kueue_queue: str = ""  # Kueue LocalQueue for GPU quota ("" = no Kueue): the job's queue-name label
    job_poll_s: float = Field(30.0, gt=0)  # status poll of a cluster job; a stage runs for hours
    # 72 h: longest paper stage plus queueing for a gang of GPU nodes
    job_timeout_s: float = Field(259200.0, gt=0)
    job_ttl_s: int = Field(86400, ge=0)  # finished jobs (and their pods' logs) kept a day for debugging
    cpu_pool: NodePool = NodePool(
        node_selector={"kangaroo.io/pool": "cpu"},
        cpu_request="2",
        cpu_limit="4",
        memory_request="4G",
        memory_limit="16G",
    )
    gpu_pool: NodePool = NodePool(
        node_selector={"kangaroo.io/pool": "gpu"},
        tolerations=[Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")],
        accelerator_type="nvidia.com/gpu",
        cpu_request="8",
        cpu_limit="16",
        memory_request="64G",
        memory_limit="256G",
    )
