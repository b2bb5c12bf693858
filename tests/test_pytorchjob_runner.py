"""run_pytorchjob through the real kubernetes client against a minimal API stand-in on 127.0.0.1 that
serves the CustomObjects endpoints it uses (create, get, delete) and plays back operator statuses."""

from __future__ import annotations

import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from kubernetes import client

from kangaroo.config import load_params
from kangaroo.k8s.errors import PyTorchJobError, PyTorchJobFailed, PyTorchJobTimeout
from kangaroo.k8s.pytorchjob import build_pytorchjob, run_pytorchjob

ROOT = Path(__file__).resolve().parents[1]
ITEM = re.compile(r"^/apis/kubeflow\.org/v1/namespaces/([^/]+)/pytorchjobs(?:/([^/?]+))?")


def condition(kind: str, reason: str = "", message: str = "") -> dict:
    return {"type": kind, "status": "True", "reason": reason, "message": message}


CREATED = {"conditions": [condition("Created", "PyTorchJobCreated")]}
RUNNING = {
    "conditions": [condition("Created", "PyTorchJobCreated"), condition("Running", "PyTorchJobRunning")],
    "replicaStatuses": {"Master": {"active": 1}, "Worker": {"active": 1}},
}
SUCCEEDED = {
    "conditions": RUNNING["conditions"] + [condition("Succeeded", "PyTorchJobSucceeded", "job finished")],
    "replicaStatuses": {"Master": {"succeeded": 1}, "Worker": {"succeeded": 1}},
}
FAILED = {
    "conditions": RUNNING["conditions"]
    + [condition("Failed", "PyTorchJobFailed", "worker-0 exited with code 1 (NCCL timeout)")],
    "replicaStatuses": {"Master": {"active": 1}, "Worker": {"failed": 1}},
}


class ApiStandIn:
    """Scripted API server state: stored jobs, statuses per GET, injected HTTP errors, request log."""

    def __init__(
        self, statuses: list[dict], create_code=201, get_errors=0, preexisting=False, store=True
    ) -> None:
        self.statuses = list(statuses)
        self.store = store
        self.create_code = create_code
        self.get_errors = get_errors
        self.preexisting = preexisting
        self.jobs: dict[str, dict] = {}
        self.requests: list[tuple[str, str, dict | None]] = []
        self.lock = threading.Lock()


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
                name = body["metadata"]["name"]
                if not match or match.group(2):
                    return self.status(404, "NotFound", self.path)
                if state.create_code != 201:
                    return self.status(state.create_code, "InternalError", "etcd unavailable")
                if state.preexisting:  # left by an earlier attempt of the same step
                    state.preexisting = False
                    state.jobs[name] = body
                if name in state.jobs:
                    return self.status(409, "AlreadyExists", f'pytorchjobs "{name}" already exists')
                if state.store:
                    state.jobs[name] = body
            self.reply(201, body)

        def do_GET(self):
            match = ITEM.match(self.path)
            with state.lock:
                state.requests.append(("GET", self.path, None))
                if state.get_errors:
                    state.get_errors -= 1
                    return self.status(503, "ServiceUnavailable", "apiserver restarting")
                job = state.jobs.get(match.group(2)) if match else None
                if job is None:
                    return self.status(404, "NotFound", f"{self.path} not found")
                status = state.statuses.pop(0) if len(state.statuses) > 1 else state.statuses[0]
            self.reply(200, {**job, "status": status})

        def do_DELETE(self):
            match = ITEM.match(self.path)
            with state.lock:
                state.requests.append(("DELETE", self.path, self.body()))
                state.jobs.pop(match.group(2), None)
            self.reply(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})

    return Handler


@pytest.fixture
def api():
    """Start a stand-in with a given script; yields (state, ApiClient on a real Configuration)."""
    servers = []

    def start(statuses, **kwargs):
        state = ApiStandIn(statuses, **kwargs)
        server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        configuration = client.Configuration(host=f"http://127.0.0.1:{server.server_address[1]}")
        return state, client.ApiClient(configuration)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def job() -> dict:
    cluster = load_params(ROOT / "params.yaml", "paper").cluster
    return build_pytorchjob("kg-instruction-tuning-r1", "instruction_tuning", ["--out", "/o"], 2, 8, cluster)


def test_success_returns_the_outcome_and_logs_each_transition(api, job, caplog):
    state, api_client = api([CREATED, RUNNING, RUNNING, SUCCEEDED])
    with caplog.at_level(logging.INFO, logger="kangaroo.k8s.pytorchjob"):
        outcome = run_pytorchjob(job, poll_s=0.01, timeout_s=30, api_client=api_client)
    assert outcome.succeeded and outcome.name == job["metadata"]["name"] and outcome.namespace == "kangaroo"
    assert outcome.replica_statuses == SUCCEEDED["replicaStatuses"]
    method, path, sent = state.requests[0]
    assert (method, path) == ("POST", "/apis/kubeflow.org/v1/namespaces/kangaroo/pytorchjobs")
    assert sent == job, "the client sent the generated manifest unchanged"
    assert [r[0] for r in state.requests[1:]] == ["GET"] * 4
    text = caplog.text
    for expected in (
        "Running=True PyTorchJobRunning",
        "Succeeded=True",
        "Master: active 1; Worker: active 1",
    ):
        assert expected in text
    assert text.count("Running=True") == 1, "a condition is logged once, not on every poll"


def test_failed_job_raises_with_the_operator_reason(api, job):
    state, api_client = api([RUNNING, FAILED])
    with pytest.raises(PyTorchJobFailed, match="NCCL timeout") as raised:
        run_pytorchjob(job, poll_s=0.01, timeout_s=30, api_client=api_client)
    assert "Worker: failed 1" in str(raised.value)
    assert "kubectl -n kangaroo logs" in str(raised.value)
    assert not any(method == "DELETE" for method, *_ in state.requests), "failed pods are kept for debugging"


def test_timeout_deletes_the_job(api, job):
    state, api_client = api([RUNNING])
    with pytest.raises(PyTorchJobTimeout, match="not finished"):
        run_pytorchjob(job, poll_s=0.01, timeout_s=0.2, api_client=api_client)
    assert state.requests[-1][0] == "DELETE"
    assert state.requests[-1][1].endswith("/pytorchjobs/kg-instruction-tuning-r1")
    assert state.jobs == {}


def test_existing_running_job_is_followed_not_recreated(api, job):
    """A retried KFP step with the same job name follows the job already running."""
    state, api_client = api([RUNNING, RUNNING, SUCCEEDED], preexisting=True)
    outcome = run_pytorchjob(job, poll_s=0.01, timeout_s=30, api_client=api_client)
    assert outcome.succeeded
    assert [r[0] for r in state.requests] == ["POST", "GET", "GET", "GET"]


def test_existing_failed_job_is_replaced(api, job):
    """A retried step after a failure must not re-read the old Failed condition: delete, create again."""
    state, api_client = api([FAILED, RUNNING, SUCCEEDED], preexisting=True)
    outcome = run_pytorchjob(job, poll_s=0.01, timeout_s=30, api_client=api_client)
    assert outcome.succeeded
    assert [r[0] for r in state.requests] == ["POST", "GET", "DELETE", "POST", "GET", "GET"]


def test_create_error_names_the_endpoint(api, job):
    _, api_client = api([RUNNING], create_code=500)
    with pytest.raises(PyTorchJobError, match=r"creating http://127\.0\.0\.1:\d+ kubeflow.org/v1 .*HTTP 500"):
        run_pytorchjob(job, poll_s=0.01, timeout_s=30, api_client=api_client)


def test_transient_read_errors_are_retried_then_fatal(api, job):
    state, api_client = api([SUCCEEDED], get_errors=2)
    assert run_pytorchjob(job, poll_s=0.01, timeout_s=30, api_client=api_client).succeeded
    state, api_client = api([SUCCEEDED], get_errors=50)
    with pytest.raises(PyTorchJobError, match="reading .*503"):
        run_pytorchjob(job, poll_s=0.01, timeout_s=30, api_client=api_client)
    assert [r[0] for r in state.requests].count("GET") == 5


def test_job_deleted_under_us_is_an_error(api, job):
    """Someone deletes the job while we follow it: a 404 is fatal at once, not retried."""
    state, api_client = api([RUNNING], store=False)
    with pytest.raises(PyTorchJobError, match="reading .*404"):
        run_pytorchjob(job, poll_s=0.01, timeout_s=30, api_client=api_client)
    assert [r[0] for r in state.requests] == ["POST", "GET"]
