"""What the TrainJob and the legacy PyTorchJob launchers share: job names, the checks before building one,
per-node resources, the MinIO credentials env, condition lookup, clean-up and the API client."""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from kangaroo.k8s.errors import TrainingJobError
from kangaroo.k8s.settings import ClusterSettings, NodePool

log = logging.getLogger(__name__)

# Controllers name child objects `<job>-<role>-<index>...` (Services, pods): keep room for the suffix in 63.
JOB_NAME = re.compile(r"[a-z]([-a-z0-9]{0,46}[a-z0-9])?")
SHM_SIZE = "16Gi"  # NCCL and DataLoader workers share tensors through /dev/shm (64 MiB by default)
MAX_API_FAILURES = 5  # consecutive failed status reads before giving up (API server restarts take ~1 min)


def job_name(stage: str, run_id: str) -> str:
    """A valid job name for STAGE in run RUN_ID (e.g. the KFP task id), <= 48 chars."""
    slug = re.sub(r"[^a-z0-9]+", "-", f"{stage}-{run_id}".lower()).strip("-")
    return f"kg-{slug}"[:48].rstrip("-")


def check_job_request(kind: str, name: str, num_nodes: int, gpus_per_node: int, pool: NodePool) -> None:
    """Refuse a bad name, no nodes, or GPUs on a pool without accelerators, naming the job."""
    if not JOB_NAME.fullmatch(name):
        raise TrainingJobError(f"{kind} name {name!r}: needs lower-case letters, digits, '-', <= 48 chars")
    if num_nodes < 1:
        raise TrainingJobError(f"{kind} {name}: num_nodes={num_nodes} must be >= 1")
    if gpus_per_node and not pool.accelerator_type:
        raise TrainingJobError(f"{kind} {name}: {gpus_per_node} GPUs asked on a pool without accelerators")


def node_resources(pool: NodePool, gpus_per_node: int) -> dict[str, dict[str, str]]:
    """Requests and limits of one node: the pool's CPU/memory and GPUS_PER_NODE accelerators (requests =
    limits for an extended resource)."""
    requests = {"cpu": pool.cpu_request, "memory": pool.memory_request}
    limits = {"cpu": pool.cpu_limit, "memory": pool.memory_limit}
    if gpus_per_node:
        requests[pool.accelerator_type] = limits[pool.accelerator_type] = str(gpus_per_node)
    return {"requests": requests, "limits": limits}


def job_image(cluster: ClusterSettings) -> str:
    """The image a cluster job's nodes run: the launcher's own (`$KANGAROO_IMAGE`, by digest or commit tag,
    set by `make compile`), so a job never runs other code than the pipeline it belongs to; else
    `cluster.image`."""
    from kangaroo.step_config import IMAGE_ENV

    return os.environ.get(IMAGE_ENV) or cluster.image


def secret_env(cluster: ClusterSettings) -> list[dict[str, Any]]:
    """The MinIO credentials as env from the Secret, never as values."""
    return [
        {"name": variable, "valueFrom": {"secretKeyRef": {"name": cluster.minio_secret, "key": key}}}
        for key, variable in cluster.minio_secret_env.items()
    ]


def condition_is(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return condition
    return None


def delete_quietly(api, group: str, version: str, plural: str, namespace: str, name: str) -> None:
    """Delete a job (its pods follow by garbage collection); a failure is logged, not raised: this is clean-up
    on the way out of an error that matters more."""
    try:
        api.delete_namespaced_custom_object(group, version, namespace, plural, name)
        log.warning("deleted %s %s/%s", plural, namespace, name)
    except Exception as err:
        log.warning("could not delete %s %s/%s: %s", plural, namespace, name, err)


def default_api_client(token_dir: str | None = None):
    """With TOKEN_DIR holding a service-account token Secret (token, ca.crt: cluster.trainer_token_mount in
    the launcher task): that account's in-cluster config. Otherwise, in a pod: the pod's own account;
    elsewhere: ~/.kube/config."""
    from kubernetes import client, config
    from kubernetes.config.incluster_config import InClusterConfigLoader

    if token_dir and os.path.isfile(os.path.join(token_dir, "token")):
        configuration = client.Configuration()
        InClusterConfigLoader(
            token_filename=os.path.join(token_dir, "token"), cert_filename=os.path.join(token_dir, "ca.crt")
        ).load_and_set(configuration)
        return client.ApiClient(configuration)
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


class StatusReader:
    """Reads a job's status for a follow loop: a transient API error is retried on the next poll (up to
    MAX_API_FAILURES in a row), a 404 (the job was deleted under us) is fatal at once; every condition change
    is logged once."""

    def __init__(
        self, api, group: str, version: str, plural: str, kind: str, namespace: str, name: str
    ) -> None:
        self.api, self.group, self.version, self.plural = api, group, version, plural
        self.kind, self.namespace, self.name = kind, namespace, name
        self.endpoint = f"{api.api_client.configuration.host} {group}/{version} {plural} {namespace}/{name}"
        self.failures = 0
        self.seen: set[tuple[str, str, str]] = set()

    def read(self, logger: logging.Logger) -> dict[str, Any]:
        from kubernetes import client

        try:
            current = self.api.get_namespaced_custom_object(
                self.group, self.version, self.namespace, self.plural, self.name
            )
            self.failures = 0
        except (client.ApiException, OSError) as err:
            self.failures += 1
            if getattr(err, "status", None) == 404 or self.failures >= MAX_API_FAILURES:
                raise TrainingJobError(f"reading {self.endpoint}: {err}") from err
            logger.warning(
                "reading %s failed (%d/%d): %s", self.endpoint, self.failures, MAX_API_FAILURES, err
            )
            return {}
        status = current.get("status") or {}
        for condition in status.get("conditions") or []:
            key = (condition.get("type", ""), condition.get("status", ""), condition.get("reason", ""))
            if key not in self.seen:
                self.seen.add(key)
                message = (condition.get("message") or "").strip()
                logger.info("%s %s: %s=%s %s %s", self.kind, self.name, *key, message)
        return status
