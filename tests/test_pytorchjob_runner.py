"""run_pytorchjob through the real kubernetes client against a minimal API stand-in on 127.0.0.1 that
serves the CustomObjects endpoints it uses (create, get, delete) and plays back operator statuses."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from k8s_api_standin import ApiStandIn, Served, condition

from kangaroo.config import load_params
from kangaroo.k8s.errors import PyTorchJobError, PyTorchJobFailed, PyTorchJobTimeout
from kangaroo.k8s.pytorchjob import build_pytorchjob, run_pytorchjob

ROOT = Path(__file__).resolve().parents[1]
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


@pytest.fixture
def api():
    """Start a scripted stand-in; yields (state, ApiClient on a real Configuration)."""
    served = []

    def start(statuses, **kwargs):
        served.append(Served(ApiStandIn(statuses, **kwargs)))
        return served[-1].state, served[-1].api_client

    yield start
    for server in served:
        server.close()


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
