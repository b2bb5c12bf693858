"""The compiled pipeline (what users upload to Kubeflow) has the DAG and placement the product promises."""

import json
import re
from pathlib import Path

import pytest
import yaml

from kangaroo.config import load_params, load_params_text
from kangaroo.train.settings import STAGE_NAMES
from pipelines.compile import compile_pipeline

GPU_EXECUTORS = {"exec-train-stage", *(f"exec-train-stage-{i}" for i in range(2, 6)), "exec-evaluate-model"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> tuple[dict, dict, str]:
    path = compile_pipeline(tmp_path_factory.mktemp("ir") / "kangaroo_pipeline.yaml")
    text = path.read_text()
    ir, platform = yaml.safe_load_all(text)
    return ir, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"], text


def all_tasks(ir: dict) -> dict[str, dict]:
    tasks = dict(ir["root"]["dag"]["tasks"])
    for component in ir["components"].values():
        tasks.update(component.get("dag", {}).get("tasks", {}))
    return tasks


def test_every_step_present_and_stages_chained_in_order(compiled):
    ir, _, _ = compiled
    tasks = all_tasks(ir)
    for step in (
        "pre-train-vision-tower",
        "plan-shards",
        "curate-shard",
        "merge-curation",
        "caption-dataset",
        "quality-gate",
        "pack-data",
        "version-dataset",
        "evaluate-model",
        "register-model",
        "publish-run-summary",
    ):
        assert step in tasks, step
    train_tasks = ["train-stage"] + [f"train-stage-{i}" for i in range(2, 6)]
    assert [tasks[t]["taskInfo"]["name"] for t in train_tasks] == list(STAGE_NAMES)
    for previous, task in zip(train_tasks, train_tasks[1:], strict=False):
        assert previous in tasks[task]["dependentTasks"]
        init = tasks[task]["inputs"]["artifacts"]["init_model"]["taskOutputArtifact"]
        assert init == {"outputArtifactKey": "model", "producerTask": previous}
    # the packed shards + index are what is versioned, and what every stage trains on
    packed = tasks["version-dataset"]["inputs"]["artifacts"]["dataset"]["taskOutputArtifact"]
    assert packed == {"outputArtifactKey": "packed", "producerTask": "pack-data"}
    for task in train_tasks:
        data = tasks[task]["inputs"]["artifacts"]["data"]["taskOutputArtifact"]
        assert data == {"outputArtifactKey": "versioned", "producerTask": "version-dataset"}
    first_stage_inputs = tasks["train-stage"]["inputs"].get("artifacts", {})
    assert "init_model" not in first_stage_inputs
    # the first stage (fresh weights) takes the caption-tag pre-trained tower; later ones start from a model
    # (it runs beside curation, outside the gate, so the gated stage sees it as a channel into the condition)
    tower = first_stage_inputs["vision_tower"]["componentInputArtifact"]
    assert tower == "pipelinechannel--pre-train-vision-tower-tower"
    assert not any("vision_tower" in tasks[t]["inputs"]["artifacts"] for t in train_tasks[1:])
    assert tasks["evaluate-model"]["inputs"]["artifacts"]["model"]["taskOutputArtifact"]["producerTask"] == (
        "train-stage-5"
    )


def test_shards_fan_out_and_are_collected(compiled):
    ir, _, _ = compiled
    loop = ir["components"]["comp-exit-handler-1"]["dag"]["tasks"]["for-loop-2"]
    assert loop["parameterIterator"]["items"]["inputParameter"].endswith("plan-shards-Output")
    merge_input = all_tasks(ir)["merge-curation"]["inputs"]["artifacts"]["shards"]
    assert merge_input["taskOutputArtifact"]["producerTask"] == "for-loop-2"


def test_gate_condition_guards_training_and_else_stops_the_run(compiled):
    ir, _, _ = compiled
    branches = ir["components"]["comp-condition-branches-3"]["dag"]["tasks"]
    passed, failed = branches["condition-4"], branches["condition-5"]
    assert "quality-gate-Output" in passed["triggerPolicy"]["condition"]
    assert passed["triggerPolicy"]["condition"].endswith("== true")
    assert "!(" in failed["triggerPolicy"]["condition"]
    guarded = ir["components"]["comp-condition-4"]["dag"]["tasks"]
    assert {"version-dataset", "train-stage", "evaluate-model"} <= set(guarded)
    # the list of where outputs are runs in every run, so cached steps' outputs are still found
    assert guarded["list-run-outputs"].get("cachingOptions", {}).get("enableCache") is not True
    assert guarded["register-model"]["cachingOptions"]["enableCache"] is True
    assert set(ir["components"]["comp-condition-5"]["dag"]["tasks"]) == {"stop-on-failed-gate"}
    assert "exit-handler-1" in ir["root"]["dag"]["tasks"]
    assert (
        ir["root"]["dag"]["tasks"]["publish-run-summary"]["triggerPolicy"]["strategy"]
        == "ALL_UPSTREAM_TASKS_COMPLETED"
    )


def test_accelerators_only_on_gpu_steps(compiled):
    ir, _, _ = compiled
    gpu_type = load_params().cluster.gpu_pool.accelerator_type
    for name, executor in ir["deploymentSpec"]["executors"].items():
        accelerator = (executor["container"].get("resources") or {}).get("accelerator")
        if name in GPU_EXECUTORS:
            assert accelerator and accelerator["resourceType"] == gpu_type, name
        else:
            assert accelerator is None, name
    train = ir["deploymentSpec"]["executors"]["exec-train-stage"]["container"]["resources"]["accelerator"]
    assert "num_gpus" in train["resourceCount"]  # the UI's num_gpus parameter sets the limit


def test_kubernetes_placement_secrets_and_checkpoint_volume(compiled):
    _, k8s, _ = compiled
    cluster = load_params().cluster
    for name, spec in k8s.items():
        pool = cluster.gpu_pool if name in GPU_EXECUTORS else cluster.cpu_pool
        assert spec["nodeSelector"]["labels"] == pool.node_selector, name
        tolerations = [{k: v for k, v in t.items() if v is not None} for t in spec.get("tolerations", [])]
        assert tolerations == [t.model_dump(exclude_none=True) for t in pool.tolerations], name
        if name != "exec-publish-run-summary" and name != "exec-stop-on-failed-gate":
            secret = spec["secretAsEnv"][0]
            assert secret["secretName"] == cluster.minio_secret
            assert {e["envVar"] for e in secret["keyToEnv"]} == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    for name in GPU_EXECUTORS - {"exec-evaluate-model"}:
        assert k8s[name]["pvcMount"][0]["mountPath"] == cluster.checkpoint_mount


def test_retries_on_preemptible_steps_only(compiled):
    ir, _, _ = compiled
    tasks = all_tasks(ir)
    for name, task in tasks.items():
        retried = "retryPolicy" in task
        executor = f"exec-{task['componentRef']['name'][5:]}" if "componentRef" in task else None
        assert retried == (executor in GPU_EXECUTORS), name


def walk(node):
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        yield from walk(child)


def test_no_secret_values_in_the_yaml(compiled):
    ir, k8s, text = compiled
    secretish = re.compile(r"(?i)key|secret|password|token|credential")
    for node in walk([ir, k8s]):
        if isinstance(node, dict) and {"name", "value"} <= set(node) and secretish.search(str(node["name"])):
            raise AssertionError(f"literal credential in the pipeline: {node['name']}")
    for executor in ir["deploymentSpec"]["executors"].values():
        assert not any(secretish.search(e["name"]) for e in executor["container"].get("env", []))
    assert "minioadmin" not in text and "AKIA" not in text


def test_images_are_pinned_and_from_config(compiled):
    ir, _, _ = compiled
    image = load_params().cluster.image
    assert not image.endswith(":latest") and ":" in image
    for name, executor in ir["deploymentSpec"]["executors"].items():
        assert executor["container"]["image"] == image, name
        assert "pip install" not in " ".join(executor["container"]["command"]), name


def test_compiled_defaults_carry_params_yaml(compiled, project_root: Path):
    ir, _, _ = compiled
    defaults = ir["root"]["inputDefinitions"]["parameters"]
    params_default = defaults["params_yaml"]["defaultValue"]
    assert json.loads(params_default) == yaml.safe_load((project_root / "params.yaml").read_text())
    assert load_params_text(params_default, "paper") == load_params(project_root / "params.yaml", "paper")
    assert defaults["stages"]["defaultValue"] == list(STAGE_NAMES)
