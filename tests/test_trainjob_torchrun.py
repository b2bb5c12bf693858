"""A stage run as a two-node Trainer v2 TrainJob, end to end on this machine: run_stage_as_cluster_job builds
the job, creates it through the real kubernetes client, and a local stand-in for the Trainer controller runs
each node's exact entry point (the TrainJob's `torchrun ... kangaroo train` command, gloo on CPU) with the
runtime's env and the PET_* rendezvous environment Trainer injects. The two "nodes" must form one world of 2
ranks and train a step, while the launcher streams their logs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from k8s_api_standin import LocalOperator, Served
from train_helpers import pack_still_images

from kangaroo.config import load_params
from kangaroo.k8s.crd_schema import validate_trainjob
from kangaroo.k8s.launch_command import torchrun_command
from kangaroo.k8s.multinode import run_stage_as_cluster_job

ROOT = Path(__file__).resolve().parents[1]
STAGE = "image_text_pretrain"  # images only: the cheapest corpus to make


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> Path:
    return pack_still_images(tmp_path_factory.mktemp("images_corpus"), tmp_path_factory.mktemp("packed"))


@pytest.fixture
def cluster_run(tmp_path):
    pvc = tmp_path / "pvc"
    params = load_params(
        ROOT / "params.yaml",
        "tiny",
        [
            f"cluster.checkpoint_mount={pvc}",
            "cluster.job_poll_s=0.5",
            "cluster.job_timeout_s=600",
        ],
    )
    secrets = {params.cluster.minio_secret: {key: f"test-{key}" for key in params.cluster.minio_secret_env}}
    # the pod's /cache and /tmp volumes: the project's caches (compiled DeepSpeed ops) and the test's tmp
    mounts = {"/cache": ROOT / ".cache", "/tmp": tmp_path}
    served = Served(LocalOperator(secrets, mounts, log_dir=tmp_path))
    yield params, served, pvc
    served.close()


@pytest.mark.slow
def test_stage_trains_as_a_two_node_trainjob(packed, cluster_run, tmp_path, caplog):
    params, served, pvc = cluster_run
    assert params.cluster.training_api == "trainjob"
    out = tmp_path / "kfp_output"
    with caplog.at_level(logging.INFO, logger="kangaroo.k8s.trainjob"):
        summary = run_stage_as_cluster_job(
            params,
            STAGE,
            out,
            data=packed,
            init_from="scratch",
            num_gpus=0,
            num_nodes=2,
            max_steps=1,
            run_id="e2e",
            api_client=served.api_client,
        )
    logs = "".join(path.read_text()[-2000:] for path in tmp_path.glob("*.log"))
    assert summary["world_size"] == 2, logs
    assert summary["steps"] == 1 and summary["stage"] == STAGE
    assert (out / "summary.json").is_file() and (out / "model" / "config.json").is_file()

    (posted,) = [body for method, _, body in served.state.requests if method == "POST"]
    validate_trainjob(posted)
    assert posted["spec"]["trainer"]["numNodes"] == 2 and posted["spec"]["trainer"]["numProcPerNode"] == 1
    run = pvc / STAGE / "runs" / posted["metadata"]["name"]
    assert (run / "data" / "samples.jsonl").is_file(), "local packed data is staged on the shared volume"
    assert load_params(run / "params.yaml", "tiny") == params, "replicas load exactly the step's params"
    # both nodes ran the TrainJob's one torchrun entry point, as a 2-node x 1-process launch
    assert served.state.commands[0] == served.state.commands[1]
    args = served.state.commands[0][served.state.commands[0].index("--stage") + 2 :]
    assert served.state.commands[0] == torchrun_command(STAGE, args, nproc_per_node=1, nnodes=2)
    assert served.state.commands[0] == posted["spec"]["trainer"]["command"]
    assert any((pvc / STAGE).glob("runs/*/checkpoints/step*")), "checkpoints land on the shared volume"
    # the nodes' logs reached the launcher's log (the KFP task log), each line naming its pod
    streamed = [r.getMessage() for r in caplog.records if r.name == "kangaroo.k8s.trainjob.pods"]
    assert any(line.startswith(f"[{posted['metadata']['name']}-node-0-1] ") for line in streamed), streamed[
        :5
    ]
    assert served.state.jobs, "a completed job is kept until its TTL (JobSet ttlSecondsAfterFinished)"
