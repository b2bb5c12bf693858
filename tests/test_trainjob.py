"""The generated Trainer v2 TrainJob: valid against the pinned trainer.kubeflow.org CRD schema (strict), GPUs
and torchrun processes per node equal, placed through the project's ClusterTrainingRuntime, and printed by
`kangaroo trainjob` exactly as the launcher would submit it."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kangaroo.config import load_params
from kangaroo.k8s.cluster_job import job_name
from kangaroo.k8s.crd_schema import (
    RUNTIME_CRD,
    TRAINJOB_CRD,
    CustomObjectSchemaError,
    crd_schema,
    runtime_pod_templates,
    validate_cluster_training_runtime,
    validate_trainjob,
)
from kangaroo.k8s.errors import TrainingJobError
from kangaroo.k8s.launch_command import torchrun_command
from kangaroo.k8s.multinode import stage_job
from kangaroo.k8s.placement import StagePlanError, plan_stages
from kangaroo.k8s.trainjob import build_trainjob, launcher_owner_reference
from kangaroo.train.settings import STAGE_NAMES

ROOT = Path(__file__).resolve().parents[1]
STAGE = "instruction_tuning"
RUNTIME_FILE = ROOT / "manifests" / "base" / "trainer" / "clustertrainingruntime.yaml"
KANGAROO = Path(sys.executable).with_name("kangaroo")


@pytest.fixture(scope="module")
def paper():
    return load_params(ROOT / "params.yaml", "paper")


def paper_job(paper, num_nodes: int, gpus: int, **kwargs) -> dict:
    name = job_name(STAGE, "run-7f3a")
    run = Path(paper.cluster.checkpoint_mount) / STAGE / "runs" / name
    inputs = {"data": str(run / "data"), "init": str(run / "init")}
    return stage_job(paper, STAGE, name, run, num_gpus=gpus, num_nodes=num_nodes, inputs=inputs, **kwargs)


def test_two_nodes_of_four_gpus_validate_with_four_processes_per_node(paper):
    job = paper_job(paper, 2, 4)
    validate_trainjob(job)
    assert (job["apiVersion"], job["kind"]) == ("trainer.kubeflow.org/v1alpha1", "TrainJob")
    trainer = job["spec"]["trainer"]
    gpu = paper.cluster.gpu_pool.accelerator_type
    assert trainer["numNodes"] == 2
    assert trainer["resourcesPerNode"]["limits"][gpu] == trainer["resourcesPerNode"]["requests"][gpu] == "4"
    assert trainer["numProcPerNode"] == 4
    command = trainer["command"]
    assert command[:3] == ["torchrun", "--nnodes=2", "--nproc-per-node=4"]
    # across nodes the rendezvous comes from Trainer's PET_* env, never from flags
    assert not any(flag.startswith(("--rdzv", "--master", "--node-rank", "--standalone")) for flag in command)
    assert job["spec"]["runtimeRef"] == {
        "apiGroup": "trainer.kubeflow.org",
        "kind": "ClusterTrainingRuntime",
        "name": paper.cluster.trainjob_runtime,
    }
    assert "&id" not in yaml.safe_dump(job)


@pytest.mark.parametrize("num_nodes, gpus", [(1, 1), (4, 8), (16, 8)])
def test_other_shapes_validate(paper, num_nodes, gpus):
    job = paper_job(paper, num_nodes, gpus)
    validate_trainjob(job)
    assert job["spec"]["trainer"]["numProcPerNode"] == gpus
    assert job["spec"]["trainer"]["command"][1:3] == [f"--nnodes={num_nodes}", f"--nproc-per-node={gpus}"]


def test_command_is_the_local_torchrun_entry_point(paper):
    job = paper_job(paper, 2, 4)
    command = job["spec"]["trainer"]["command"]
    args = command[command.index("--stage") + 2 :]
    assert command == torchrun_command(STAGE, args, nproc_per_node=4, nnodes=2)
    run = Path(paper.cluster.checkpoint_mount) / STAGE / "runs" / job["metadata"]["name"]
    assert args[args.index("--params") + 1] == str(run / "params.yaml")
    assert args[args.index("--checkpoints") + 1] == str(run / "checkpoints")
    assert "--resume" in args


def test_secrets_come_from_the_secret_never_as_values(paper):
    env = paper_job(paper, 2, 4)["spec"]["trainer"]["env"]
    assert {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env} == {
        variable: {"name": paper.cluster.minio_secret, "key": key}
        for key, variable in paper.cluster.minio_secret_env.items()
    }
    assert not any("value" in e for e in env)


def test_cpu_pool_job_on_a_dev_cluster():
    tiny = load_params(ROOT / "params.yaml", "tiny")
    job = stage_job(tiny, STAGE, "kg-cpu", Path("/mnt/checkpoints/x"), num_gpus=0, num_nodes=2)
    validate_trainjob(job)
    resources = job["spec"]["trainer"]["resourcesPerNode"]
    assert all("gpu" not in key for bound in resources.values() for key in bound)
    assert resources["requests"]["cpu"] == tiny.cluster.cpu_pool.cpu_request
    assert job["spec"]["trainer"]["numProcPerNode"] == 1
    with pytest.raises(TrainingJobError, match="without accelerators"):
        build_trainjob("kg-cpu", STAGE, [], 2, 4, tiny.cluster, pool=tiny.cluster.cpu_pool)


def test_kueue_queue_label_and_owner_reference(paper):
    cluster = paper.cluster.model_copy(update={"kueue_queue": "gpu-team"})
    owner = launcher_owner_reference(
        cluster.namespace,
        {
            "KANGAROO_POD_NAME": "run-x-launcher",
            "KANGAROO_POD_UID": "1234-abcd",
            "KANGAROO_POD_NAMESPACE": "kangaroo",
        },
    )
    job = build_trainjob("kg-owned", STAGE, [], 2, 4, cluster, owner=owner)
    validate_trainjob(job)
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-team"
    assert job["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": "run-x-launcher", "uid": "1234-abcd"}
    ]
    assert "kueue.x-k8s.io/queue-name" not in paper_job(paper, 2, 4)["metadata"]["labels"]
    assert launcher_owner_reference("kangaroo", {}) is None
    elsewhere = {"KANGAROO_POD_NAME": "p", "KANGAROO_POD_UID": "u", "KANGAROO_POD_NAMESPACE": "kubeflow"}
    assert launcher_owner_reference("kangaroo", elsewhere) is None, "owner references cannot cross namespaces"


def test_legacy_pytorchjob_only_when_a_profile_asks(paper):
    assert paper.cluster.training_api == "trainjob"
    legacy = load_params(ROOT / "params.yaml", "paper", ["cluster.training_api=pytorchjob"])
    assert paper_job(legacy, 2, 4)["kind"] == "PyTorchJob"


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda job: job["spec"]["trainer"].__setitem__("numProcPerNode", "4"), "not of type 'integer'"),
        (lambda job: job["spec"].pop("runtimeRef"), "'runtimeRef' is a required property"),
        (lambda job: job["spec"]["runtimeRef"].pop("name"), "'name' is a required property"),
        (lambda job: job["spec"]["trainer"].__setitem__("nprocPerNode", 4), "nprocPerNode"),
        (
            lambda job: job["spec"]["trainer"]["env"][0].__setitem__("valueFrom", {"secretRef": {}}),
            "secretRef",
        ),
    ],
)
def test_schema_rejects_broken_jobs(paper, mutate, message):
    job = copy.deepcopy(paper_job(paper, 2, 4))
    mutate(job)
    with pytest.raises(CustomObjectSchemaError, match=message):
        validate_trainjob(job)


def test_vendored_crds_are_trainer_v2_pinned():
    for crd_file, name in ((TRAINJOB_CRD, "trainjobs"), (RUNTIME_CRD, "clustertrainingruntimes")):
        text = crd_file.read_text()
        crd = yaml.safe_load(text)
        assert crd["metadata"]["name"] == f"{name}.trainer.kubeflow.org"
        assert [v["name"] for v in crd["spec"]["versions"]] == ["v1alpha1"]
        assert "658725bdae5c7e3a0854d93ac6ff492e109a22ab" in text and "v2.3.0" in text  # pinned source
    trainer = crd_schema(str(TRAINJOB_CRD), "v1alpha1")["properties"]["spec"]["properties"]["trainer"]
    assert {"command", "numNodes", "numProcPerNode", "resourcesPerNode", "env", "image"} <= set(
        trainer["properties"]
    )
    assert yaml.safe_load(RUNTIME_CRD.read_text())["spec"]["scope"] == "Cluster"


def test_project_runtime_validates_and_matches_the_cluster_block():
    runtime = yaml.safe_load(RUNTIME_FILE.read_text())
    validate_cluster_training_runtime(runtime)
    cluster = load_params(ROOT / "params.yaml").cluster
    assert runtime["metadata"]["name"] == cluster.trainjob_runtime
    assert "torch" in runtime["spec"]["mlPolicy"]
    ((job_name_, template),) = list(runtime_pod_templates(runtime))
    assert job_name_ == "node"
    spec = template["spec"]
    (container,) = spec["containers"]
    assert container["name"] == "node" and container["image"] == cluster.image
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert (
        volumes[mounts[cluster.checkpoint_mount]]["persistentVolumeClaim"]["claimName"]
        == cluster.checkpoint_pvc
    )
    assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
    assert spec["securityContext"]["runAsUser"] == cluster.run_as_user
    assert spec["restartPolicy"] == "Never"
    failure = runtime["spec"]["template"]["spec"]["failurePolicy"]
    assert failure["maxRestarts"] >= 1, (
        "a pre-empted node restarts the gang, which resumes from its checkpoint"
    )


def test_runtime_schema_rejects_a_broken_pod():
    runtime = yaml.safe_load(RUNTIME_FILE.read_text())
    broken = copy.deepcopy(runtime)
    pod = broken["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    pod["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
    with pytest.raises(CustomObjectSchemaError, match="node pod"):
        validate_cluster_training_runtime(broken)
    broken = copy.deepcopy(runtime)
    broken["spec"]["mlPolicy"]["torch"]["numProcPerNode"] = "auto"
    with pytest.raises(CustomObjectSchemaError, match="numProcPerNode"):
        validate_cluster_training_runtime(broken)


PACKED_URI = "s3://kangaroo/packed/v1"


def test_dry_run_cli_prints_what_the_launcher_submits(paper):
    result = subprocess.run(
        [
            str(KANGAROO),
            "trainjob",
            "--stage",
            STAGE,
            "--num-nodes",
            "2",
            "--gpus-per-node",
            "4",
            "--profile",
            "paper",
            "--data",
            PACKED_URI,
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    printed = yaml.safe_load(result.stdout)
    validate_trainjob(printed)
    name = job_name(STAGE, "manual")
    run = Path(paper.cluster.checkpoint_mount) / STAGE / "runs" / name
    inputs = {"data": PACKED_URI, "init": None}
    assert printed == stage_job(paper, STAGE, name, run, num_gpus=4, num_nodes=2, inputs=inputs)
    assert printed["spec"]["trainer"]["numProcPerNode"] == 4
    command = printed["spec"]["trainer"]["command"]
    assert command[command.index("--data") + 1] == PACKED_URI  # the job streams it from the object store


@pytest.mark.parametrize(
    "args, message",
    [(["--stage", "nope"], "--stage nope"), (["--stage", STAGE, "--num-nodes", "0"], "num_nodes=0")],
)
def test_dry_run_cli_refuses_bad_input_with_exit_2(args, message):
    result = subprocess.run(
        [str(KANGAROO), "trainjob", *args], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert result.returncode == 2
    assert message in " ".join((result.stdout + result.stderr).split())


def test_stage_placement_plan():
    cluster = load_params(ROOT / "params.yaml").cluster
    plan = plan_stages(["instruction_tuning", "long_video_tuning"], 1, cluster)
    assert list(plan) == list(STAGE_NAMES)
    assert plan["image_text_pretrain"] == "skip" and plan["instruction_tuning"] == "pod"
    assert set(plan_stages(list(STAGE_NAMES), 2, cluster).values()) == {"cluster_job"}
    every_stage = cluster.model_copy(update={"cluster_job_min_nodes": 1})
    assert plan_stages(["instruction_tuning"], 1, every_stage)["instruction_tuning"] == "cluster_job"
    with pytest.raises(StagePlanError, match="instruction_tunning"):
        plan_stages(["instruction_tunning"], 1, cluster)
