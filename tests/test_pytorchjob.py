"""The generated PyTorchJob: valid against the training operator's CRD schema (strict) and the core/v1 pod
schema, placed on the GPU pool of params.yaml, and running the same torchrun entry point as a local run."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from kangaroo.config import load_params
from kangaroo.k8s.cluster_job import job_name
from kangaroo.k8s.crd_schema import CRD_FILE, PyTorchJobSchemaError, crd_schema, validate_pytorchjob
from kangaroo.k8s.errors import PyTorchJobError
from kangaroo.k8s.launch_command import TRAIN_ENTRY_POINT, torchrun_command, train_arguments
from kangaroo.k8s.pytorchjob import build_pytorchjob

ROOT = Path(__file__).resolve().parents[1]
STAGE = "long_video_tuning"


@pytest.fixture(scope="module")
def paper():
    return load_params(ROOT / "params.yaml", "paper").cluster


@pytest.fixture(scope="module")
def tiny():
    return load_params(ROOT / "params.yaml", "tiny").cluster


def stage_args(cluster) -> list[str]:
    run = Path(cluster.checkpoint_mount) / STAGE / "runs" / "r1"
    return train_arguments(
        run / "out",
        params_file=run / "params.yaml",
        profile="paper",
        overrides=["train.stages.long_video_tuning.max_steps=10"],
        data=run / "data",
        init=run / "init",
        checkpoints=Path(cluster.checkpoint_mount) / STAGE,
        dataset_version="md5:abc",
        resume=True,
    )


def pod_specs(job: dict) -> dict[str, dict]:
    return {role: spec["template"]["spec"] for role, spec in job["spec"]["pytorchReplicaSpecs"].items()}


@pytest.mark.parametrize("num_nodes, gpus", [(1, 1), (2, 8), (4, 8), (16, 4)])
def test_generated_job_validates_against_the_crd(paper, num_nodes, gpus):
    job = build_pytorchjob(job_name(STAGE, "run-7f3a"), STAGE, stage_args(paper), num_nodes, gpus, paper)
    validate_pytorchjob(job)
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["replicas"] == 1
    assert replicas.get("Worker", {}).get("replicas", 0) == num_nodes - 1
    assert job["spec"]["nprocPerNode"] == str(gpus)
    assert job["spec"]["runPolicy"]["schedulingPolicy"]["minAvailable"] == num_nodes
    # a plain-data document: no YAML anchors shared between Master and Worker
    assert "&id" not in yaml.safe_dump(job)


def test_command_is_the_local_torchrun_entry_point(paper):
    args = stage_args(paper)
    job = build_pytorchjob("kg-cmd", STAGE, args, 4, 8, paper)
    for spec in pod_specs(job).values():
        (container,) = spec["containers"]
        assert container["command"] == torchrun_command(STAGE, args, nproc_per_node=8, nnodes=4)
        assert "args" not in container
    local = torchrun_command(STAGE, args, nproc_per_node=2, nnodes=1)
    cluster_command = pod_specs(job)["Master"]["containers"][0]["command"]
    entry = ["--no-python", *TRAIN_ENTRY_POINT, "--stage", STAGE, *args]
    assert local[-len(entry) :] == cluster_command[-len(entry) :] == entry
    assert local[:4] == ["torchrun", "--nnodes=1", "--nproc-per-node=2", "--standalone"]
    # across nodes the rendezvous comes from the operator's PET_* environment, never from flags
    assert not any(
        flag.startswith(("--rdzv", "--master", "--node-rank", "--standalone")) for flag in cluster_command
    )


def test_train_arguments_are_the_cli_flags():
    args = train_arguments(
        "out", params_file="p.yaml", profile="tiny", overrides=["a.b=1", "c=2"], max_steps=3, resume=True
    )
    assert args == [
        "--out", "out", "--params", "p.yaml", "--profile", "tiny", "--max-steps", "3",
        "--set", "a.b=1", "--set", "c=2", "--resume",
    ]  # fmt: skip
    from typer.main import get_command

    from kangaroo.cli import app

    train = get_command(app).commands["train"]
    known = {opt for param in train.params for opt in param.opts}
    flags = [
        arg for arg in stage_args(load_params(ROOT / "params.yaml", "paper").cluster) if arg.startswith("--")
    ]
    assert set(flags) <= known, set(flags) - known


def test_gpu_pool_placement_and_resources(paper):
    job = build_pytorchjob("kg-gpu", STAGE, [], 2, 8, paper)
    pool = paper.gpu_pool
    for spec in pod_specs(job).values():
        assert spec["nodeSelector"] == pool.node_selector
        assert spec["tolerations"] == [t.model_dump(exclude_none=True) for t in pool.tolerations]
        resources = spec["containers"][0]["resources"]
        assert (
            resources["limits"][pool.accelerator_type] == resources["requests"][pool.accelerator_type] == "8"
        )
        assert (
            resources["requests"]["cpu"] == pool.cpu_request
            and resources["limits"]["memory"] == pool.memory_limit
        )
        assert spec["priorityClassName"] == paper.training_priority_class == "kangaroo-training"
    assert job["spec"]["runPolicy"]["schedulingPolicy"]["priorityClass"] == "kangaroo-training"


def test_cpu_pool_job_has_no_gpus_and_no_priority_class_on_a_dev_cluster(tiny):
    job = build_pytorchjob("kg-cpu", STAGE, [], 2, 0, tiny, pool=tiny.cpu_pool, nproc_per_node=2)
    validate_pytorchjob(job)
    for spec in pod_specs(job).values():
        resources = spec["containers"][0]["resources"]
        assert all("gpu" not in key for bound in resources.values() for key in bound)
        assert "tolerations" not in spec and "priorityClassName" not in spec
        assert spec["nodeSelector"] == tiny.cpu_pool.node_selector
    assert job["spec"]["nprocPerNode"] == "2"
    with pytest.raises(PyTorchJobError, match="without accelerators"):
        build_pytorchjob("kg-cpu", STAGE, [], 2, 4, tiny, pool=tiny.cpu_pool)


def test_secrets_volumes_and_pod_security(paper):
    job = build_pytorchjob("kg-sec", STAGE, [], 2, 1, paper)
    assert job["metadata"]["namespace"] == paper.namespace
    for spec in pod_specs(job).values():
        (container,) = spec["containers"]
        secret_env = {
            env["name"]: env["valueFrom"]["secretKeyRef"] for env in container["env"] if "valueFrom" in env
        }
        assert secret_env == {
            variable: {"name": paper.minio_secret, "key": key}
            for key, variable in paper.minio_secret_env.items()
        }
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        assert (
            volumes[mounts[paper.checkpoint_mount]]["persistentVolumeClaim"]["claimName"]
            == paper.checkpoint_pvc
        )
        assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
        assert {"/tmp", "/cache"} <= set(mounts)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == paper.run_as_user
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
        assert container["image"] == paper.image and not paper.image.endswith(":latest")
        assert container["name"] == "pytorch"  # the operator injects its rendezvous env into this container
        assert {"name": "pytorchjob-port", "containerPort": 23456, "protocol": "TCP"} in container["ports"]
        assert spec["automountServiceAccountToken"] is False


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda job: job["spec"].__setitem__("nprocPerNode", 8), "nprocPerNode: 8 is not of type 'string'"),
        (lambda job: job["spec"]["runPolicy"].__setitem__("cleanupPolicy", "All"), "cleanupPolicy"),
        (lambda job: job["spec"].pop("pytorchReplicaSpecs"), "'pytorchReplicaSpecs' is a required property"),
        (
            lambda job: job["spec"]["pytorchReplicaSpecs"]["Master"].__setitem__("replicas", "1"),
            "not of type",
        ),
        (
            lambda job: job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0][
                "resources"
            ].__setitem__("limitz", {}),
            "Worker pod",
        ),
        (
            lambda job: job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0].pop(
                "name"
            ),
            "'name' is a required property",
        ),
    ],
)
def test_schema_rejects_broken_jobs(paper, mutate, message):
    job = copy.deepcopy(build_pytorchjob("kg-bad", STAGE, [], 2, 1, paper))
    mutate(job)
    with pytest.raises(PyTorchJobSchemaError, match=message):
        validate_pytorchjob(job)


def test_vendored_crd_is_the_training_operator_v1_schema():
    crd = yaml.safe_load(CRD_FILE.read_text())
    assert crd["metadata"]["name"] == "pytorchjobs.kubeflow.org"
    assert [v["name"] for v in crd["spec"]["versions"]] == ["v1"]
    spec = crd_schema(str(CRD_FILE))["properties"]["spec"]
    assert set(spec["properties"]) == {"elasticPolicy", "nprocPerNode", "pytorchReplicaSpecs", "runPolicy"}
    assert spec["required"] == ["pytorchReplicaSpecs"]
    assert "c20bf65e03b85543c0b2ff25b14c7e335cce34f9" in CRD_FILE.read_text()  # source pinned in its header


@pytest.mark.parametrize("bad", ["Kangaroo", "kg_stage", "-kg", "kg-" + "x" * 60])
def test_bad_job_names_are_refused(paper, bad):
    with pytest.raises(PyTorchJobError, match="name"):
        build_pytorchjob(bad, STAGE, [], 2, 1, paper)


def test_job_name_from_stage_and_run_id():
    assert job_name("image_text_pretrain", "Run_42") == "kg-image-text-pretrain-run-42"
    long = job_name("long_video_tuning", "a" * 80)
    assert len(long) <= 48 and not long.endswith("-")


def test_local_command_can_name_the_venv(tmp_path):
    import sys

    bin_dir = Path(sys.executable).parent
    command = torchrun_command(STAGE, ["--out", "o"], nproc_per_node=2, bin_dir=bin_dir)
    assert command[0] == str(bin_dir / "torchrun") and command[command.index("--no-python") + 1] == str(
        bin_dir / "kangaroo"
    )
    assert Path(command[0]).is_file() and Path(command[5]).is_file()


def test_command_builder_refuses_empty_launches():
    with pytest.raises(ValueError):
        torchrun_command(STAGE, [], nproc_per_node=0)
