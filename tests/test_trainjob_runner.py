"""run_trainjob through the real kubernetes client against the API stand-in on 127.0.0.1 (trainjobs with the
API server's 201/409/404 answers): success, failure, retried launchers, timeouts, and a launcher stopped with
SIGTERM, which must delete its TrainJob."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from k8s_api_standin import ApiStandIn, Served, condition

from kangaroo.config import load_params
from kangaroo.k8s.errors import TrainingJobError, TrainingJobFailed, TrainingJobTimeout
from kangaroo.k8s.trainjob import build_trainjob, run_trainjob

ROOT = Path(__file__).resolve().parents[1]
NAME = "kg-instruction-tuning-r1"
PATH = "/apis/trainer.kubeflow.org/v1alpha1/namespaces/kangaroo/trainjobs"
RUNNING = {
    "jobsStatus": [{"name": "node", "active": 1, "ready": 1, "succeeded": 0, "failed": 0, "suspended": 0}]
}
PROGRESS = {
    **RUNNING,
    "trainerStatus": {
        "progressPercentage": 40,
        "estimatedRemainingSeconds": 3600,
        "metrics": [{"name": "loss", "value": "1.9"}],
    },
}
COMPLETE = {
    "conditions": [condition("Complete", "JobsCompleted", "jobset completed")],
    "jobsStatus": [{"name": "node", "active": 0, "ready": 0, "succeeded": 1, "failed": 0, "suspended": 0}],
}
FAILED = {
    "conditions": [
        condition("Failed", "JobSetFailed", "node-1 exited with code 1 (NCCL timeout), restarts exhausted")
    ],
    "jobsStatus": [{"name": "node", "active": 0, "ready": 0, "succeeded": 0, "failed": 1, "suspended": 0}],
}


@pytest.fixture
def api():
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
    return build_trainjob(NAME, "instruction_tuning", ["--out", "/o"], 2, 4, cluster)


def methods(state) -> list[str]:
    return [method for method, path, _ in state.requests if "/pods" not in path]


def test_complete_job_returns_and_logs_progress(api, job, caplog):
    state, api_client = api([RUNNING, PROGRESS, PROGRESS, COMPLETE])
    with caplog.at_level(logging.INFO, logger="kangaroo.k8s.trainjob"):
        outcome = run_trainjob(job, poll_s=0.01, timeout_s=30, api_client=api_client)
    assert outcome.succeeded and outcome.name == NAME and outcome.namespace == "kangaroo"
    method, path, sent = state.requests[0]
    assert (method, path) == ("POST", PATH)
    assert sent == job, "the client sent the generated manifest unchanged"
    assert methods(state) == ["POST", "GET", "GET", "GET", "GET"], "a completed job is kept, not deleted"
    text = caplog.text
    assert "2 node(s) x 4 process(es) per node (= GPUs per node: nvidia.com/gpu=4)" in text
    assert "node: active 1, ready 1" in text and "Complete=True JobsCompleted" in text
    assert text.count("progress: 40%") == 1, "progress is logged when it changes, not on every poll"
    assert "'loss': '1.9'" in text


def test_failed_job_raises_and_stays(api, job):
    state, api_client = api([RUNNING, FAILED])
    with pytest.raises(TrainingJobFailed, match="NCCL timeout") as raised:
        run_trainjob(job, poll_s=0.01, timeout_s=30, api_client=api_client)
    assert "jobset.sigs.k8s.io/jobset-name=" + NAME in str(raised.value)
    assert "DELETE" not in methods(state), "a Failed job stays Failed (its status says why)"
    assert NAME in state.jobs


def test_retried_launcher_follows_a_running_job(api, job):
    state, api_client = api([RUNNING, RUNNING, COMPLETE], preexisting=True)
    assert run_trainjob(job, poll_s=0.01, timeout_s=30, api_client=api_client).succeeded
    assert methods(state) == ["POST", "GET", "GET", "GET"], "409, read the existing job, follow it to the end"


def test_retried_launcher_does_not_recreate_a_failed_job(api, job):
    state, api_client = api([FAILED], preexisting=True)
    with pytest.raises(TrainingJobFailed, match="already exists and Failed.*not recreated"):
        run_trainjob(job, poll_s=0.01, timeout_s=30, api_client=api_client)
    assert methods(state) == ["POST", "GET"], "no delete, no second create"


def test_timeout_deletes_the_job(api, job):
    state, api_client = api([RUNNING])
    with pytest.raises(TrainingJobTimeout, match="not finished"):
        run_trainjob(job, poll_s=0.01, timeout_s=0.2, api_client=api_client)
    assert state.requests[-1][:2] == ("DELETE", f"{PATH}/{NAME}")
    assert state.jobs == {}


def test_create_error_names_the_endpoint(api, job):
    _, api_client = api([RUNNING], create_code=500)
    with pytest.raises(
        TrainingJobError, match=r"creating http://127\.0\.0\.1:\d+ trainer.kubeflow.org/v1alpha1 .*HTTP 500"
    ):
        run_trainjob(job, poll_s=0.01, timeout_s=30, api_client=api_client)


def test_job_deleted_under_us_is_an_error(api, job):
    """Someone deletes the job while we follow it: the stand-in answers 404 like the API server."""
    state, api_client = api([RUNNING], store=False)
    with pytest.raises(TrainingJobError, match="reading .*404"):
        run_trainjob(job, poll_s=0.01, timeout_s=30, api_client=api_client)
    assert methods(state) == ["POST", "GET", "DELETE"], "clean-up tried; the 404 answer is fine"


def test_standin_answers_like_the_api_server(api, job):
    """409 on an existing name, 404 on a missing one, 400 on a kind posted to another resource."""
    from kubernetes import client

    _, api_client = api([RUNNING])
    custom = client.CustomObjectsApi(api_client)
    group, version = "trainer.kubeflow.org", "v1alpha1"
    custom.create_namespaced_custom_object(group, version, "kangaroo", "trainjobs", job)
    for call, expected in (
        (lambda: custom.create_namespaced_custom_object(group, version, "kangaroo", "trainjobs", job), 409),
        (lambda: custom.get_namespaced_custom_object(group, version, "kangaroo", "trainjobs", "other"), 404),
        (
            lambda: custom.delete_namespaced_custom_object(group, version, "kangaroo", "trainjobs", "other"),
            404,
        ),
        (
            lambda: custom.create_namespaced_custom_object(
                "kubeflow.org", "v1", "kangaroo", "pytorchjobs", job
            ),
            400,
        ),
    ):
        with pytest.raises(client.ApiException) as raised:
            call()
        assert raised.value.status == expected
        assert json.loads(raised.value.body)["kind"] == "Status"


LAUNCHER = """
import logging, sys
from kubernetes import client
from kangaroo.config import load_params
from kangaroo.k8s.pytorchjob import build_pytorchjob, run_pytorchjob
from kangaroo.k8s.trainjob import build_trainjob, run_trainjob
logging.basicConfig(level=logging.INFO, stream=sys.stdout)
cluster = load_params(sys.argv[2], "paper").cluster
api_client = client.ApiClient(client.Configuration(host=sys.argv[1]))
if sys.argv[3] == "trainjob":
    job = build_trainjob("kg-stop-me", "instruction_tuning", ["--out", "/o"], 2, 4, cluster)
    run_trainjob(job, poll_s=0.05, timeout_s=600, api_client=api_client)
else:  # the legacy path a profile can ask for
    job = build_pytorchjob("kg-stop-me", "instruction_tuning", ["--out", "/o"], 2, 4, cluster)
    run_pytorchjob(job, poll_s=0.05, timeout_s=600, api_client=api_client)
"""


@pytest.mark.parametrize(
    "training_api, path",
    [("trainjob", PATH), ("pytorchjob", "/apis/kubeflow.org/v1/namespaces/kangaroo/pytorchjobs")],
)
def test_sigterm_deletes_the_job(api, training_api, path):
    """Stopping the run in the UI sends SIGTERM to the launcher: it deletes its job before exiting."""
    state, api_client = api([RUNNING])
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-c",
            LAUNCHER,
            api_client.configuration.host,
            str(ROOT / "params.yaml"),
            training_api,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        for _ in range(600):  # until the launcher follows its job (polls have started)
            if sum(m == "GET" for m in methods(state)) >= 2:
                break
            assert launcher.poll() is None, launcher.stdout.read()
            time.sleep(0.05)
        assert "kg-stop-me" in state.jobs
        launcher.send_signal(signal.SIGTERM)
        output, _ = launcher.communicate(timeout=60)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode != 0, output
    assert "LauncherStopped" in output and "SIGTERM" in output
    assert ("DELETE", f"{path}/kg-stop-me") in [r[:2] for r in state.requests]
    assert state.jobs == {}, "the job is gone: its GPUs are free"
