"""Multi-node training as a Kubeflow Trainer v2 `TrainJob` (trainer.kubeflow.org/v1alpha1): build it from the
`cluster:` settings, create it with the kubernetes client, follow it until it ends, streaming its pods' logs.

The TrainJob refers to the project's ClusterTrainingRuntime (cluster.trainjob_runtime, manifests/base/
trainer/): the runtime holds the pod (image, pod security, PVC, /dev/shm, GPU-pool placement), the TrainJob
only what changes per stage: the `torchrun ... kangaroo train --stage ...` command
(kangaroo.k8s.launch_command), nodes, processes and resources per node, the MinIO credentials env.
Trainer v2's torch plugin sets PET_NNODES, PET_NPROC_PER_NODE, PET_NODE_RANK, PET_MASTER_ADDR and
PET_MASTER_PORT in every node, which torchrun reads.
Only fields present in every Trainer v2 release (v2.0-v2.3: runtimeRef, trainer.*) are used, so one builder
fits every installed version.

The launcher (this module, run from a CPU-pool KFP task) never holds GPUs. It deletes its TrainJob when it is
stopped (SIGTERM: the run was stopped in the UI), times out or fails itself; the TrainJob also carries an
ownerReference to the launcher pod, so deleting the run garbage-collects the job. A TrainJob the controller
marks Failed (JobSet restarts exhausted) stays Failed: a retried launcher reports it instead of recreating it.

The Kubeflow SDK (`kubeflow.trainer.TrainerClient`, 0.5.0) is not used: its `train()` always submits (no
object for a dry run), looks the runtime up on the API server, takes env values as plain strings (no
secretKeyRef), has no numProcPerNode for container trainers and no ownerReferences, and wraps HTTP 409 into a
RuntimeError (a retried launcher must tell "already exists" apart). See docs/kubernetes.md.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kangaroo.k8s.cluster_job import (
    StatusReader,
    check_job_request,
    condition_is,
    default_api_client,
    delete_quietly,
    job_image,
    node_resources,
    secret_env,
)
from kangaroo.k8s.errors import TrainingJobError, TrainingJobFailed, TrainingJobTimeout
from kangaroo.k8s.launch_command import torchrun_command
from kangaroo.k8s.launcher_signals import sigterm_stops_launcher
from kangaroo.k8s.settings import ClusterSettings, NodePool

log = logging.getLogger(__name__)
pod_log = logging.getLogger("kangaroo.k8s.trainjob.pods")

GROUP, VERSION, PLURAL, KIND = "trainer.kubeflow.org", "v1alpha1", "trainjobs", "TrainJob"
RUNTIME_KIND = "ClusterTrainingRuntime"
NODE_CONTAINER = "node"  # Trainer v2 injects the PET_* env into the container of this name
JOBSET_NAME_LABEL = "jobset.sigs.k8s.io/jobset-name"  # on every pod of the TrainJob's JobSet
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
# Downward API variables of the launcher pod (the pipeline sets them; kangaroo/k8s/settings has no say).
POD_ENV = {"name": "KANGAROO_POD_NAME", "uid": "KANGAROO_POD_UID", "namespace": "KANGAROO_POD_NAMESPACE"}


def build_trainjob(
    name: str,
    stage: str,
    command_args: list[str],
    num_nodes: int,
    gpus_per_node: int,
    cluster: ClusterSettings,
    *,
    pool: NodePool | None = None,
    nproc_per_node: int | None = None,
    owner: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The TrainJob manifest: NUM_NODES nodes of `cluster.image` under `cluster.trainjob_runtime`, each
    running `torchrun_command(stage, command_args, nproc_per_node, num_nodes)` with `gpus_per_node`
    accelerators of POOL (default: the GPU pool) and the pool's CPU/memory.

    nproc_per_node defaults to gpus_per_node (1 without GPUs: a gloo CPU job). OWNER: an ownerReference
    (launcher_owner_reference) so the job is garbage-collected with the launcher pod.
    """
    pool = pool if pool is not None else cluster.gpu_pool
    check_job_request(KIND, name, num_nodes, gpus_per_node, pool)
    nproc = nproc_per_node or max(gpus_per_node, 1)
    job_labels = {"app.kubernetes.io/part-of": "kangaroo-flow", "kangaroo.io/stage": stage, **(labels or {})}
    if cluster.kueue_queue:
        job_labels[KUEUE_QUEUE_LABEL] = cluster.kueue_queue
    metadata: dict[str, Any] = {"name": name, "namespace": cluster.namespace, "labels": job_labels}
    if owner:
        metadata["ownerReferences"] = [owner]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": metadata,
        "spec": {
            "runtimeRef": {"apiGroup": GROUP, "kind": RUNTIME_KIND, "name": cluster.trainjob_runtime},
            "trainer": {
                "image": job_image(cluster),
                "command": torchrun_command(stage, command_args, nproc_per_node=nproc, nnodes=num_nodes),
                "numNodes": num_nodes,
                "numProcPerNode": nproc,
                "resourcesPerNode": node_resources(pool, gpus_per_node),
                "env": secret_env(cluster),
            },
        },
    }


def launcher_owner_reference(namespace: str, environ: dict[str, str] | None = None) -> dict[str, Any] | None:
    """An ownerReference to the launcher pod, from its downward-API env; None outside a pod, or when the pod
    runs in another namespace (owner references cannot cross namespaces)."""
    environ = os.environ if environ is None else environ
    name, uid = environ.get(POD_ENV["name"]), environ.get(POD_ENV["uid"])
    if not (name and uid):
        return None
    pod_namespace = environ.get(POD_ENV["namespace"], namespace)
    if pod_namespace != namespace:
        log.warning(
            "launcher pod %s/%s is not in the job's namespace %s: the job gets no ownerReference "
            "(only this launcher deletes it)",
            pod_namespace,
            name,
            namespace,
        )
        return None
    return {"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid}


@dataclass
class JobOutcome:
    """How a TrainJob ended (only successful ends are returned; failures raise)."""

    name: str
    namespace: str
    succeeded: bool
    conditions: list[dict[str, Any]] = field(default_factory=list)
    jobs_status: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0


def run_trainjob(
    job: dict[str, Any],
    poll_s: float = 30.0,
    timeout_s: float = 259200.0,
    api_client=None,
    stream_logs: bool = True,
) -> JobOutcome:
    """Create JOB (or follow the job of that name a retried launcher finds), log its conditions, child-job
    counts and trainer progress, stream its pods' logs, and return when it is Complete.

    Raises TrainingJobFailed when it is (or already was) Failed, TrainingJobTimeout after TIMEOUT_S,
    LauncherStopped on SIGTERM, TrainingJobError on API errors. On every exit but Complete and Failed the
    job is deleted first: nothing keeps GPUs after its launcher stopped.
    """
    from kubernetes import client

    name = job["metadata"]["name"]
    namespace = job["metadata"].get("namespace") or "default"
    api_client = api_client or default_api_client()
    api = client.CustomObjectsApi(api_client)
    endpoint = f"{api_client.configuration.host} {GROUP}/{VERSION} {PLURAL} {namespace}/{name}"
    trainer = job["spec"]["trainer"]
    log.info(
        "TrainJob %s/%s: %d node(s) x %d process(es) per node (= GPUs per node: %s), runtime %s",
        namespace,
        name,
        trainer["numNodes"],
        trainer["numProcPerNode"],
        gpu_count(trainer["resourcesPerNode"]),
        job["spec"]["runtimeRef"]["name"],
    )
    logs = PodLogFollower(client.CoreV1Api(api_client), namespace, name, poll_s) if stream_logs else None
    delete_on_exit = True
    with sigterm_stops_launcher():
        try:
            create_or_follow(api, job, namespace, endpoint)
            if logs:
                logs.start()
            outcome = follow(api, name, namespace, poll_s, timeout_s)
            delete_on_exit = False
            return outcome
        except TrainingJobFailed:
            delete_on_exit = False  # a Failed job stays: its status says why, and no retry recreates it
            raise
        finally:
            if logs:
                logs.stop()
            if delete_on_exit:
                delete_quietly(api, GROUP, VERSION, PLURAL, namespace, name)


def gpu_count(resources: dict[str, Any]) -> str:
    limits = resources.get("limits") or {}
    return ", ".join(f"{k}={v}" for k, v in limits.items() if k not in ("cpu", "memory")) or "none"


def create_or_follow(api, job: dict[str, Any], namespace: str, endpoint: str) -> None:
    """Create JOB; if it exists (a retried launcher), follow it unless it Failed."""
    from kubernetes import client

    name = job["metadata"]["name"]
    try:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, job)
        log.info("created TrainJob %s/%s", namespace, name)
        return
    except client.ApiException as err:
        if err.status != 409:
            raise TrainingJobError(
                f"creating {endpoint}: HTTP {err.status} {err.reason}: {err.body}"
            ) from err
    try:
        existing = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except client.ApiException as err:
        raise TrainingJobError(f"reading {endpoint} after HTTP 409: HTTP {err.status} {err.reason}") from err
    failed = condition_is(existing.get("status") or {}, "Failed")
    if failed:
        raise TrainingJobFailed(
            f"TrainJob {namespace}/{name} already exists and Failed ({failed.get('reason', '')}: "
            f"{failed.get('message', '')}); it is not recreated. To run the stage again: "
            f"kubectl -n {namespace} delete trainjob {name}, then retry (it resumes from its checkpoint)"
        )
    log.info("TrainJob %s/%s already exists (retried launcher): following it", namespace, name)


def follow(api, name: str, namespace: str, poll_s: float, timeout_s: float) -> JobOutcome:
    started = time.monotonic()
    reader = StatusReader(api, GROUP, VERSION, PLURAL, KIND, namespace, name)
    last_jobs: str | None = None
    last_progress: tuple | None = None
    while True:
        status = reader.read(log)
        jobs = jobs_summary(status.get("jobsStatus") or [])
        if jobs and jobs != last_jobs:
            last_jobs = jobs
            log.info("TrainJob %s jobs: %s", name, jobs)
        trainer = status.get("trainerStatus") or {}
        progress = (trainer.get("progressPercentage"), trainer.get("estimatedRemainingSeconds"))
        if trainer and progress != last_progress:
            last_progress = progress
            metrics = {m.get("name"): m.get("value") for m in trainer.get("metrics") or []}
            log.info(
                "TrainJob %s progress: %s%% (about %s s left) %s",
                name,
                progress[0],
                progress[1],
                metrics or "",
            )
        elapsed = time.monotonic() - started
        if condition_is(status, "Complete"):
            return JobOutcome(
                name, namespace, True, status.get("conditions"), status.get("jobsStatus"), elapsed
            )
        failed = condition_is(status, "Failed")
        if failed:
            raise TrainingJobFailed(
                f"TrainJob {namespace}/{name} failed: {failed.get('reason', '')}: "
                f"{failed.get('message', '')} "
                f"(jobs: {jobs or 'none'}; logs: kubectl -n {namespace} logs -l {JOBSET_NAME_LABEL}={name})"
            )
        if elapsed >= timeout_s:
            raise TrainingJobTimeout(f"TrainJob {namespace}/{name} not finished after {timeout_s:.0f} s")
        time.sleep(min(poll_s, max(timeout_s - elapsed, 0.0)))


def jobs_summary(jobs_status: list[dict[str, Any]]) -> str:
    parts = []
    for job in sorted(jobs_status, key=lambda j: j.get("name", "")):
        counts = ", ".join(
            f"{key} {job[key]}"
            for key in ("active", "ready", "succeeded", "failed", "suspended")
            if job.get(key)
        )
        parts.append(f"{job.get('name', '?')}: {counts or 'pending'}")
    return "; ".join(parts)


class PodLogFollower:
    """Streams the logs of every pod of a TrainJob (restarted gangs included) into this process's log, one
    thread per pod, each line prefixed with the pod's name."""

    def __init__(self, core_api, namespace: str, job_name: str, poll_s: float) -> None:
        self.core, self.namespace, self.job_name, self.poll_s = core_api, namespace, job_name, poll_s
        self.stopped = threading.Event()
        self.followed: set[str] = set()
        self.responses: list[Any] = []
        self.streams: list[threading.Thread] = []
        self.thread = threading.Thread(target=self.watch_pods, name=f"logs-{job_name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self, drain_s: float = 5.0) -> None:
        """Stop watching; streams of finished pods get DRAIN_S to deliver their last lines."""
        self.stopped.set()
        deadline = time.monotonic() + drain_s
        for stream in list(self.streams):
            stream.join(timeout=max(deadline - time.monotonic(), 0.0))
        for response in list(self.responses):
            try:
                response.close()
            except Exception:  # noqa: S110 (a half-closed stream on shutdown is fine)
                pass

    def watch_pods(self) -> None:
        while not self.stopped.is_set():
            try:
                pods = self.core.list_namespaced_pod(
                    self.namespace, label_selector=f"{JOBSET_NAME_LABEL}={self.job_name}"
                ).items
            except Exception as err:  # logs are a convenience: never fail the launcher over them
                log.debug("listing pods of %s: %s", self.job_name, err)
                pods = []
            for pod in pods:
                if pod.metadata.name not in self.followed and pod.status.phase in (
                    "Running",
                    "Succeeded",
                    "Failed",
                ):
                    self.followed.add(pod.metadata.name)
                    stream = threading.Thread(target=self.stream, args=(pod.metadata.name,), daemon=True)
                    self.streams.append(stream)
                    stream.start()
            self.stopped.wait(self.poll_s)

    def stream(self, pod: str) -> None:
        try:
            response = self.core.read_namespaced_pod_log(
                pod, self.namespace, container=NODE_CONTAINER, follow=True, _preload_content=False
            )
            self.responses.append(response)
            pending = b""
            for chunk in response.stream(4096):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    pod_log.info("[%s] %s", pod, line.decode(errors="replace"))
            if pending:
                pod_log.info("[%s] %s", pod, pending.decode(errors="replace"))
        except Exception as err:
            if not self.stopped.is_set():
                log.debug("log stream of %s ended: %s", pod, err)
