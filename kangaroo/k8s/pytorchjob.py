"""Multi-node training as a Kubeflow training-operator PyTorchJob (kubeflow.org/v1): build it from the
`cluster:` settings, create it with the kubernetes client, follow its conditions until it ends.

The operator starts one Master and NUM_NODES-1 Worker pods and sets the rendezvous environment in each
(PET_MASTER_ADDR/PET_MASTER_PORT/PET_NNODES/PET_NODE_RANK/PET_NPROC_PER_NODE); every pod runs the same
`torchrun ... kangaroo train --stage ...` command (kangaroo.k8s.launch_command), which DeepSpeed then
initialises from. A failed pod fails the job (restartPolicy Never, backoffLimit 0): the KFP step's
retry creates a fresh job that resumes from the last checkpoint on the shared PVC.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from kangaroo.k8s import pod_labels
from kangaroo.k8s.cluster_job import (
    MAX_API_FAILURES,
    SHM_SIZE,
    StatusReader,
    check_job_request,
    condition_is,
    default_api_client,
    delete_quietly,
    job_image,
    node_resources,
    secret_env,
)
from kangaroo.k8s.errors import LauncherStopped, PyTorchJobError, PyTorchJobFailed, PyTorchJobTimeout
from kangaroo.k8s.launch_command import torchrun_command
from kangaroo.k8s.launcher_signals import sigterm_stops_launcher
from kangaroo.k8s.settings import ClusterSettings, NodePool

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "kubeflow.org", "v1", "pytorchjobs"
CONTAINER_NAME = "pytorch"  # the operator injects its env into the container with this name
MASTER_PORT = 23456  # the operator's default `pytorchjob-port`


def build_pytorchjob(
    name: str,
    stage: str,
    command_args: list[str],
    num_nodes: int,
    gpus_per_node: int,
    cluster: ClusterSettings,
    *,
    pool: NodePool | None = None,
    nproc_per_node: int | None = None,
    labels: dict[str, str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The PyTorchJob manifest: Master + (num_nodes - 1) Workers of `cluster.image`, each running
    `torchrun_command(stage, command_args, nproc_per_node, num_nodes)` on POOL (default: the GPU pool) with
    `gpus_per_node` accelerators, the checkpoint PVC, the MinIO credentials and the pod-security rules.

    nproc_per_node defaults to gpus_per_node (1 on a pool without accelerators: a gloo CPU job).
    """
    pool = pool if pool is not None else cluster.gpu_pool
    check_job_request("PyTorchJob", name, num_nodes, gpus_per_node, pool)
    nproc = nproc_per_node or max(gpus_per_node, 1)
    command = torchrun_command(stage, command_args, nproc_per_node=nproc, nnodes=num_nodes)
    job_labels = {
        "app.kubernetes.io/part-of": "kangaroo-flow",
        "kangaroo.io/stage": stage,
        **pod_labels.TRAINING_NODE_LABELS,  # egress: the job's other nodes, HTTPS (model hubs)
        **(labels or {}),
    }
    template = pod_template(command, gpus_per_node, cluster, pool, job_labels, extra_env or {})
    replica_specs = {"Master": replica_spec(1, template)}
    if num_nodes > 1:
        replica_specs["Worker"] = replica_spec(num_nodes - 1, template)
    scheduling: dict[str, Any] = {"minAvailable": num_nodes}  # gang: all nodes or none (Volcano, Kueue)
    if cluster.training_priority_class:
        scheduling["priorityClass"] = cluster.training_priority_class
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PyTorchJob",
        "metadata": {"name": name, "namespace": cluster.namespace, "labels": job_labels},
        "spec": {
            "nprocPerNode": str(nproc),
            "pytorchReplicaSpecs": replica_specs,
            "runPolicy": {
                "backoffLimit": 0,
                "cleanPodPolicy": "None",  # keep finished pods (and their logs) until the TTL below
                "ttlSecondsAfterFinished": cluster.job_ttl_s,
                "activeDeadlineSeconds": int(cluster.job_timeout_s),
                "schedulingPolicy": scheduling,
            },
        },
    }


def replica_spec(replicas: int, template: dict[str, Any]) -> dict[str, Any]:
    # A copy per role: shared dicts would come out as YAML anchors, and a patch to one role would leak.
    return {"replicas": replicas, "restartPolicy": "Never", "template": copy.deepcopy(template)}


def pod_template(
    command: list[str],
    gpus_per_node: int,
    cluster: ClusterSettings,
    pool: NodePool,
    labels: dict[str, str],
    extra_env: dict[str, str],
) -> dict[str, Any]:
    env = secret_env(cluster)
    # The image's caches (Dockerfile ENV) live on writable volumes: the root filesystem is read-only.
    plain_env = {"HF_HOME": "/cache/huggingface", "TORCH_EXTENSIONS_DIR": "/cache/torch_extensions"}
    env += [{"name": key, "value": value} for key, value in {**plain_env, **extra_env}.items()]
    container = {
        "name": CONTAINER_NAME,
        "image": job_image(cluster),
        "command": command,
        "env": env,
        "ports": [{"name": "pytorchjob-port", "containerPort": MASTER_PORT, "protocol": "TCP"}],
        "resources": node_resources(pool, gpus_per_node),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "checkpoints", "mountPath": cluster.checkpoint_mount},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "cache", "mountPath": "/cache"},
            {"name": "dshm", "mountPath": "/dev/shm"},
        ],
    }
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": cluster.run_as_user,
            "runAsGroup": cluster.run_as_user,
            "fsGroup": cluster.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [
            {"name": "checkpoints", "persistentVolumeClaim": {"claimName": cluster.checkpoint_pvc}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "16Gi"}},
            {"name": "cache", "emptyDir": {"sizeLimit": "64Gi"}},
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM_SIZE}},
        ],
    }
    if pool.node_selector:
        spec["nodeSelector"] = dict(pool.node_selector)
    if pool.tolerations:
        spec["tolerations"] = [t.model_dump(exclude_none=True) for t in pool.tolerations]
    if cluster.training_priority_class:
        spec["priorityClassName"] = cluster.training_priority_class
    return {"metadata": {"labels": dict(labels)}, "spec": spec}


@dataclass
class JobOutcome:
    """How a PyTorchJob ended (only successful ends are returned; failures raise)."""

    name: str
    namespace: str
    succeeded: bool
    conditions: list[dict[str, Any]] = field(default_factory=list)
    replica_statuses: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0


def run_pytorchjob(
    job: dict[str, Any],
    namespace: str | None = None,
    poll_s: float = 30.0,
    timeout_s: float = 259200.0,
    api_client=None,
    delete_on_timeout: bool = True,
) -> JobOutcome:
    """Create JOB (or follow it if a job of that name exists: a retried step), log every new condition
    and replica count, and return when it Succeeded. Raises PyTorchJobFailed when the operator marks it
    Failed, PyTorchJobTimeout after TIMEOUT_S (deleting the job so its GPUs are freed), PyTorchJobError on
    API errors. API_CLIENT: a `kubernetes.client.ApiClient` (default: in-cluster config, else kubeconfig).
    """
    from kubernetes import client

    name = job["metadata"]["name"]
    namespace = namespace or job["metadata"].get("namespace") or "default"
    api = client.CustomObjectsApi(api_client or default_api_client())
    endpoint = f"{api.api_client.configuration.host} {GROUP}/{VERSION} {PLURAL} {namespace}/{name}"
    with sigterm_stops_launcher():
        create_or_follow(api, job, namespace, endpoint, poll_s)
        try:
            return follow(api, name, namespace, poll_s, timeout_s, delete_on_timeout)
        except LauncherStopped:  # the run was stopped: free the GPUs
            delete_quietly(api, GROUP, VERSION, PLURAL, namespace, name)
            raise


def follow(api, name, namespace, poll_s, timeout_s, delete_on_timeout) -> JobOutcome:
    started = time.monotonic()
    reader = StatusReader(api, GROUP, VERSION, PLURAL, "PyTorchJob", namespace, name)
    last_replicas: dict[str, Any] | None = None
    while True:
        status = reader.read(log)
        replicas = status.get("replicaStatuses")
        if replicas and replicas != last_replicas:
            last_replicas = replicas
            log.info("PyTorchJob %s replicas: %s", name, replica_summary(replicas))
        elapsed = time.monotonic() - started
        if condition_is(status, "Succeeded"):
            return JobOutcome(name, namespace, True, status.get("conditions"), replicas or {}, elapsed)
        failed = condition_is(status, "Failed")
        if failed:
            raise PyTorchJobFailed(
                f"PyTorchJob {namespace}/{name} failed: {failed.get('reason', '')}: "
                f"{failed.get('message', '')} (replicas: {replica_summary(replicas or {})}; "
                f"logs: kubectl -n {namespace} logs -l training.kubeflow.org/job-name={name})"
            )
        if elapsed >= timeout_s:
            if delete_on_timeout:
                delete_quietly(api, GROUP, VERSION, PLURAL, namespace, name)
            raise PyTorchJobTimeout(f"PyTorchJob {namespace}/{name} not finished after {timeout_s:.0f} s")
        time.sleep(min(poll_s, max(timeout_s - elapsed, 0.0)))


def create_or_follow(api, job: dict[str, Any], namespace: str, endpoint: str, poll_s: float) -> None:
    """Create JOB. If it exists (a retried step), follow it while it runs, or replace it if it Failed."""
    from kubernetes import client

    name = job["metadata"]["name"]
    for attempt in range(MAX_API_FAILURES):
        try:
            api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, job)
            log.info("created PyTorchJob %s/%s", namespace, name)
            return
        except client.ApiException as err:
            if err.status != 409:
                raise PyTorchJobError(
                    f"creating {endpoint}: HTTP {err.status} {err.reason}: {err.body}"
                ) from err
        try:
            existing = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except client.ApiException as err:
            if err.status == 404:  # deleted between our create and get: create again
                continue
            raise PyTorchJobError(f"reading {endpoint}: HTTP {err.status} {err.reason}") from err
        if not condition_is(existing.get("status") or {}, "Failed"):
            log.info("PyTorchJob %s/%s already exists (retried step): following it", namespace, name)
            return
        log.warning(
            "PyTorchJob %s/%s exists and Failed: replacing it (resumes from its checkpoint)", namespace, name
        )
        delete_quietly(api, GROUP, VERSION, PLURAL, namespace, name)
        time.sleep(min(poll_s, 5.0) * (attempt + 1))  # the operator removes pods and finalizers first
    raise PyTorchJobError(f"creating {endpoint}: a failed job of that name could not be replaced")


def replica_summary(replicas: dict[str, Any]) -> str:
    parts = []
    for role, counts in sorted(replicas.items()):
        numbers = ", ".join(
            f"{key} {counts[key]}" for key in ("active", "succeeded", "failed") if counts.get(key)
        )
        parts.append(f"{role}: {numbers or 'pending'}")
    return "; ".join(parts)
