"""A minimal Kubernetes API stand-in on 127.0.0.1 for the endpoints the launchers use, reached through a real
kubernetes.client: create/get/delete of trainer.kubeflow.org/v1alpha1 `trainjobs` and kubeflow.org/v1
`pytorchjobs` with the API server's answers (201, 409 AlreadyExists on an existing name, 404 NotFound on a
missing one, 400 on a kind/namespace that does not match the URL), and pods list + pod logs (`follow=true`
streams until the pod's process exits).

Two modes: scripted (GETs play back a list of controller statuses), or `LocalOperator`, which does what the
Trainer v2 controller (or the training operator) does for a created job: start every node's container command
as a local process with the rendezvous environment it injects (PET_*), the runtime's env and volumes mapped
to local folders, and report Complete / Failed (Succeeded for PyTorchJobs) from the processes' exit codes.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import yaml
from kubernetes import client

ITEM = re.compile(
    r"^/apis/(?P<group>kubeflow\.org/v1|trainer\.kubeflow\.org/v1alpha1)/namespaces/(?P<namespace>[^/]+)/"
    r"(?P<plural>pytorchjobs|trainjobs)(?:/(?P<name>[^/?]+))?(?:\?.*)?$"
)
KINDS = {"pytorchjobs": "PyTorchJob", "trainjobs": "TrainJob"}
PODS = re.compile(r"^/api/v1/namespaces/(?P<namespace>[^/]+)/pods(?:\?(?P<query>.*))?$")
POD_LOG = re.compile(
    r"^/api/v1/namespaces/(?P<namespace>[^/]+)/pods/(?P<pod>[^/?]+)/log(?:\?(?P<query>.*))?$"
)
RUNTIME_FILE = (
    Path(__file__).resolve().parents[1] / "manifests" / "base" / "trainer" / "clustertrainingruntime.yaml"
)


def condition(kind: str, reason: str = "", message: str = "") -> dict:
    return {"type": kind, "status": "True", "reason": reason, "message": message}


class ApiStandIn:
    """Scripted API server state: stored jobs, statuses per GET, injected HTTP errors, request log."""

    def __init__(
        self, statuses: list[dict] | None = None, create_code=201, get_errors=0, preexisting=False, store=True
    ) -> None:
        self.statuses = list(statuses or [{}])
        self.store = store
        self.create_code = create_code
        self.get_errors = get_errors
        self.preexisting = preexisting
        self.jobs: dict[str, dict] = {}
        self.requests: list[tuple[str, str, dict | None]] = []
        self.lock = threading.Lock()

    def created(self, job: dict) -> None:
        """Hook: a job was stored (LocalOperator starts its pods here)."""

    def status_of(self, name: str) -> dict:
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]

    def deleted(self, name: str) -> None:
        """Hook: a job was deleted."""

    def pods(self, namespace: str, label_selector: str) -> list[dict]:
        """Pods matching LABEL_SELECTOR (`key=value`); the scripted stand-in has none."""
        return []

    def pod_log_file(self, pod: str) -> tuple[Path, subprocess.Popen] | None:
        return None


class LocalOperator(ApiStandIn):
    """Runs each node of a created TrainJob (or replica of a PyTorchJob) as a local process, like the Trainer
    v2 controller (training operator) would: the TrainJob's trainer.command with the runtime's container env
    (manifests/base/trainer/), the trainer env, and the PET_* rendezvous env of Trainer's torch plugin."""

    def __init__(self, secrets: dict[str, dict[str, str]], mounts: dict[str, Path], log_dir: Path) -> None:
        super().__init__()
        self.secrets, self.mounts, self.log_dir = secrets, mounts, log_dir
        self.processes: dict[str, list[tuple[str, Path, subprocess.Popen]]] = {}  # job -> (pod, log, process)
        self.kinds: dict[str, str] = {}
        self.commands: list[list[str]] = []

    def local_path(self, value: str) -> str:
        if any(value == str(local) or value.startswith(f"{local}/") for local in self.mounts.values()):
            return value  # already a host path (the checkout itself may live under /tmp)
        for mount, local in self.mounts.items():
            if value == mount or value.startswith(mount.rstrip("/") + "/"):
                return str(local) + value[len(mount.rstrip("/")) :]
        return value

    def env_of(self, items: list[dict]) -> dict[str, str]:
        env = {}
        for item in items:
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            env[item["name"]] = (
                self.secrets[ref["name"]][ref["key"]] if ref else self.local_path(item["value"])
            )
        return env

    def created(self, job: dict) -> None:
        name = job["metadata"]["name"]
        self.kinds[name] = job["kind"]
        port = free_port()
        base_env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "PYTHONUNBUFFERED": "1",
        }
        nodes = []  # (pod name, command, env)
        if job["kind"] == "TrainJob":
            runtime = yaml.safe_load(RUNTIME_FILE.read_text())
            assert job["spec"]["runtimeRef"]["name"] == runtime["metadata"]["name"], "unknown runtime"
            (replicated,) = runtime["spec"]["template"]["spec"]["replicatedJobs"]
            (runtime_container,) = replicated["template"]["spec"]["template"]["spec"]["containers"]
            trainer = job["spec"]["trainer"]
            for rank in range(trainer["numNodes"]):
                env = {
                    **base_env,
                    **self.env_of(runtime_container.get("env", [])),
                    **self.env_of(trainer.get("env", [])),
                }
                env.update(  # Trainer v2's torch plugin (PET_MASTER_ADDR: node 0's headless Service there)
                    PET_NNODES=str(trainer["numNodes"]),
                    PET_NPROC_PER_NODE=str(trainer["numProcPerNode"]),
                    PET_NODE_RANK=str(rank),
                    PET_MASTER_ADDR="127.0.0.1",
                    PET_MASTER_PORT=str(port),
                )
                nodes.append((f"{name}-node-0-{rank}", trainer["command"], env))
        else:
            replicas = job["spec"]["pytorchReplicaSpecs"]
            roles = ["Master"] * replicas["Master"]["replicas"] + ["Worker"] * replicas.get("Worker", {}).get(
                "replicas", 0
            )
            for rank, role in enumerate(roles):
                (container,) = replicas[role]["template"]["spec"]["containers"]
                env = {**base_env, **self.env_of(container.get("env", []))}
                env.update(  # what the training operator sets in every replica (static rendezvous)
                    MASTER_ADDR="127.0.0.1",
                    MASTER_PORT=str(port),
                    WORLD_SIZE=str(len(roles)),
                    RANK=str(rank),
                    PET_MASTER_ADDR="127.0.0.1",
                    PET_MASTER_PORT=str(port),
                    PET_NNODES=str(len(roles)),
                    PET_NODE_RANK=str(rank),
                    PET_NPROC_PER_NODE=job["spec"]["nprocPerNode"],
                )
                nodes.append((f"{name}-{role.lower()}-{rank}", container["command"], env))
        started = []
        for pod, command, env in nodes:
            self.commands.append(command)
            log_path = self.log_dir / f"{pod}.log"
            with open(log_path, "w") as log:
                process = subprocess.Popen(
                    [self.local_path(part) for part in command], env=env, stdout=log, stderr=subprocess.STDOUT
                )
            started.append((pod, log_path, process))
        self.processes[name] = started

    def status_of(self, name: str) -> dict:
        codes = [process.poll() for _, _, process in self.processes.get(name, [])]
        running = sum(code is None for code in codes)
        succeeded = sum(code == 0 for code in codes)
        failed = len(codes) - running - succeeded
        if self.kinds.get(name) == "PyTorchJob":
            counts: dict[str, dict[str, int]] = {}
            for pod, _, process in self.processes.get(name, []):
                role = "Master" if "-master-" in pod else "Worker"
                code = process.poll()
                key = "active" if code is None else "succeeded" if code == 0 else "failed"
                counts.setdefault(role, {}).setdefault(key, 0)
                counts[role][key] += 1
            conditions = [
                condition("Created", "PyTorchJobCreated"),
                condition("Running", "PyTorchJobRunning"),
            ]
            if failed:
                conditions.append(condition("Failed", "PyTorchJobFailed", f"exit codes {codes}"))
            elif codes and succeeded == len(codes):
                conditions.append(condition("Succeeded", "PyTorchJobSucceeded", "all replicas exited 0"))
            return {"conditions": conditions, "replicaStatuses": counts}
        conditions = []
        if failed:
            conditions.append(condition("Failed", "JobSetFailed", f"node exit codes {codes}"))
        elif codes and succeeded == len(codes):
            conditions.append(condition("Complete", "JobSetCompleted", "all nodes exited 0"))
        node = {"name": "node", "active": 1 if running else 0, "ready": 1 if running else 0}
        node.update(
            succeeded=1 if codes and succeeded == len(codes) else 0, failed=1 if failed else 0, suspended=0
        )
        return {"conditions": conditions, "jobsStatus": [node]}

    def deleted(self, name: str) -> None:
        for _, _, process in self.processes.pop(name, []):
            process.kill()
            process.wait()

    def pods(self, namespace: str, label_selector: str) -> list[dict]:
        key, _, value = label_selector.partition("=")
        if key != "jobset.sigs.k8s.io/jobset-name":
            return []
        pods = []
        for pod, _, process in self.processes.get(value, []):
            code = process.poll()
            phase = "Running" if code is None else "Succeeded" if code == 0 else "Failed"
            pods.append(
                {
                    "metadata": {"name": pod, "namespace": namespace, "labels": {key: value}},
                    "status": {"phase": phase},
                }
            )
        return pods

    def pod_log_file(self, pod: str) -> tuple[Path, subprocess.Popen] | None:
        for started in self.processes.values():
            for name, log_path, process in started:
                if name == pod:
                    return log_path, process
        return None

    def stop(self) -> None:
        for name in list(self.processes):
            self.deleted(name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_handler(state: ApiStandIn):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def reply(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def status(self, code: int, reason: str, message: str) -> None:
            body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message}
            self.reply(code, {**body, "reason": reason, "code": code})

        def body(self) -> dict | None:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length)) if length else None

        def do_POST(self):
            body = self.body()
            match = ITEM.match(self.path)
            with state.lock:
                state.requests.append(("POST", self.path, body))
                if not match or match["name"]:
                    return self.status(404, "NotFound", self.path)
                if body.get("kind") != KINDS[match["plural"]] or body.get("apiVersion") != match["group"]:
                    return self.status(
                        400,
                        "BadRequest",
                        f"{body.get('apiVersion')} {body.get('kind')} posted to {self.path}",
                    )
                if body["metadata"].get("namespace", match["namespace"]) != match["namespace"]:
                    return self.status(
                        400, "BadRequest", "the namespace of the object does not match the request"
                    )
                name = body["metadata"]["name"]
                if state.create_code != 201:
                    return self.status(state.create_code, "InternalError", "etcd unavailable")
                if state.preexisting:  # left by an earlier attempt of the same step
                    state.preexisting = False
                    state.jobs[name] = body
                if name in state.jobs:
                    return self.status(
                        409,
                        "AlreadyExists",
                        f'{match["plural"]}.{match["group"].split("/")[0]} "{name}" already exists',
                    )
                if state.store:
                    state.jobs[name] = body
                    state.created(body)
            self.reply(201, body)

        def do_GET(self):
            pods, pod_log = PODS.match(self.path), POD_LOG.match(self.path)
            if pods:
                selector = parse_qs(pods["query"] or "").get("labelSelector", [""])[0]
                with state.lock:
                    state.requests.append(("GET", self.path, None))
                    items = state.pods(pods["namespace"], selector)
                return self.reply(
                    200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}
                )
            if pod_log:
                return self.stream_log(pod_log)
            match = ITEM.match(self.path)
            with state.lock:
                state.requests.append(("GET", self.path, None))
                if state.get_errors:
                    state.get_errors -= 1
                    return self.status(503, "ServiceUnavailable", "apiserver restarting")
                name = match["name"] if match else None
                job = state.jobs.get(name)
                if job is None:
                    return self.status(404, "NotFound", f"{self.path} not found")
                status = state.status_of(name)
            self.reply(200, {**job, "status": status})

        def stream_log(self, match) -> None:
            with state.lock:
                state.requests.append(("GET", self.path, None))
                found = state.pod_log_file(match["pod"])
            if found is None:
                return self.status(404, "NotFound", f'pods "{match["pod"]}" not found')
            log_path, process = found
            follow = parse_qs(match["query"] or "").get("follow", ["false"])[0].lower() == "true"  # ParseBool
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()  # HTTP/1.0, no length: the body ends when the connection closes
            with open(log_path, "rb") as log:
                while True:
                    chunk = log.read(65536)
                    if chunk:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    elif not follow or process.poll() is not None:
                        rest = log.read()
                        if rest:
                            self.wfile.write(rest)
                        return
                    else:
                        time.sleep(0.05)

        def do_DELETE(self):
            match = ITEM.match(self.path)
            with state.lock:
                state.requests.append(("DELETE", self.path, self.body()))
                name = match["name"] if match else None
                if name not in state.jobs:
                    return self.status(404, "NotFound", f"{self.path} not found")
                state.jobs.pop(name)
                state.deleted(name)
            self.reply(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})

    return Handler


class Served:
    """`state` served on a free loopback port; `.api_client` talks to it through a real Configuration."""

    def __init__(self, state: ApiStandIn) -> None:
        self.state = state
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        host = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.api_client = client.ApiClient(client.Configuration(host=host))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if isinstance(self.state, LocalOperator):
            self.state.stop()
