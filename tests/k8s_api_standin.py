"""A minimal Kubernetes API stand-in on 127.0.0.1 for the CustomObjects endpoints run_pytorchjob uses
(create, get, delete of kubeflow.org/v1 pytorchjobs), reached through a real kubernetes.client.

Two modes: scripted (GETs play back a list of operator statuses), or `LocalOperator`, which does what the
training operator does for a created PyTorchJob: start every replica's container command as a local process
with the rendezvous environment the operator injects, volumes mapped to local folders, and report
Running / Succeeded / Failed from the processes' exit codes.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from kubernetes import client

ITEM = re.compile(r"^/apis/kubeflow\.org/v1/namespaces/([^/]+)/pytorchjobs(?:/([^/?]+))?")


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


class LocalOperator(ApiStandIn):
    """Runs each replica of a created PyTorchJob as a local process, like the training operator would."""

    def __init__(self, secrets: dict[str, dict[str, str]], mounts: dict[str, Path], log_dir: Path) -> None:
        super().__init__()
        self.secrets, self.mounts, self.log_dir = secrets, mounts, log_dir
        self.pods: dict[str, list[tuple[str, subprocess.Popen]]] = {}
        self.commands: list[list[str]] = []

    def local_path(self, value: str) -> str:
        if any(value == str(local) or value.startswith(f"{local}/") for local in self.mounts.values()):
            return value  # already a host path (the checkout itself may live under /tmp)
        for mount, local in self.mounts.items():
            if value == mount or value.startswith(mount.rstrip("/") + "/"):
                return str(local) + value[len(mount.rstrip("/")) :]
        return value

    def created(self, job: dict) -> None:
        name = job["metadata"]["name"]
        replicas = job["spec"]["pytorchReplicaSpecs"]
        roles = ["Master"] * replicas["Master"]["replicas"] + ["Worker"] * replicas.get("Worker", {}).get(
            "replicas", 0
        )
        port = free_port()
        pods = []
        for rank, role in enumerate(roles):
            (container,) = replicas[role]["template"]["spec"]["containers"]
            env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                env[item["name"]] = (
                    self.secrets[ref["name"]][ref["key"]] if ref else self.local_path(item["value"])
                )
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
                PYTHONUNBUFFERED="1",
            )
            command = [self.local_path(part) for part in container["command"]]
            self.commands.append(container["command"])
            log = open(self.log_dir / f"{name}-{role.lower()}-{rank}.log", "w")  # noqa: SIM115 (lives with the pod)
            pods.append((role, subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)))
        self.pods[name] = pods

    def status_of(self, name: str) -> dict:
        pods = self.pods.get(name, [])
        codes = [(role, process.poll()) for role, process in pods]
        counts: dict[str, dict[str, int]] = {}
        for role, code in codes:
            key = "active" if code is None else "succeeded" if code == 0 else "failed"
            counts.setdefault(role, {}).setdefault(key, 0)
            counts[role][key] += 1
        conditions = [condition("Created", "PyTorchJobCreated"), condition("Running", "PyTorchJobRunning")]
        if any(code not in (None, 0) for _, code in codes):
            conditions.append(condition("Failed", "PyTorchJobFailed", f"exit codes {[c for _, c in codes]}"))
        elif codes and all(code == 0 for _, code in codes):
            conditions.append(condition("Succeeded", "PyTorchJobSucceeded", "all replicas exited 0"))
        return {"conditions": conditions, "replicaStatuses": counts}

    def deleted(self, name: str) -> None:
        for _, process in self.pods.pop(name, []):
            process.kill()
            process.wait()

    def stop(self) -> None:
        for name in list(self.pods):
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
                if not match or match.group(2):
                    return self.status(404, "NotFound", self.path)
                name = body["metadata"]["name"]
                if state.create_code != 201:
                    return self.status(state.create_code, "InternalError", "etcd unavailable")
                if state.preexisting:  # left by an earlier attempt of the same step
                    state.preexisting = False
                    state.jobs[name] = body
                if name in state.jobs:
                    return self.status(409, "AlreadyExists", f'pytorchjobs "{name}" already exists')
                if state.store:
                    state.jobs[name] = body
                    state.created(body)
            self.reply(201, body)

        def do_GET(self):
            match = ITEM.match(self.path)
            with state.lock:
                state.requests.append(("GET", self.path, None))
                if state.get_errors:
                    state.get_errors -= 1
                    return self.status(503, "ServiceUnavailable", "apiserver restarting")
                name = match.group(2) if match else None
                job = state.jobs.get(name)
                if job is None:
                    return self.status(404, "NotFound", f"{self.path} not found")
                status = state.status_of(name)
            self.reply(200, {**job, "status": status})

        def do_DELETE(self):
            match = ITEM.match(self.path)
            with state.lock:
                state.requests.append(("DELETE", self.path, self.body()))
                name = match.group(2)
                state.jobs.pop(name, None)
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
