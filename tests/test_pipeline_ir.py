"""The compiled pipeline (what users upload to Kubeflow) has the DAG and placement the product promises."""

import json
import re
from pathlib import Path

import pytest
import yaml
from manifest_helpers import DECODING_EXECUTORS

from components.placement import plan_training
from components.step_config import resolve_step_configs
from kangaroo.config import load_params, load_params_text
from kangaroo.train.settings import STAGE_NAMES
from pipelines.compile import compile_pipeline


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


def leaf_tasks(ir: dict) -> list[dict]:
    """Every task that runs a container: its key, display name, executor and the trigger conditions of the
    DAGs (dsl.If/Elif/Else branches) it sits in, outermost first."""
    found = []

    def walk(dag: dict, guards: list[str]) -> None:
        for key, task in dag["tasks"].items():
            component = ir["components"][task["componentRef"]["name"]]
            here = guards + (
                [task["triggerPolicy"]["condition"]] if "condition" in task.get("triggerPolicy", {}) else []
            )
            if "dag" in component:
                walk(component["dag"], here)
            else:
                name = task["taskInfo"]["name"]
                found.append(
                    {"key": key, "name": name, "executor": component["executorLabel"], "guards": here}
                )

    walk(ir["root"]["dag"], [])
    return found


def training_tasks(ir: dict) -> dict[str, dict[str, dict]]:
    """stage -> {"pod" | "skip" | "cluster_job": its stage-training task}, by display name."""
    by_stage: dict[str, dict[str, dict]] = {stage: {} for stage in STAGE_NAMES}
    suffixes = {"": "pod", " (skipped)": "skip", " (TrainJob)": "cluster_job"}
    for task in leaf_tasks(ir):
        for stage in STAGE_NAMES:
            for suffix, placement in suffixes.items():
                if task["name"] == stage + suffix:
                    by_stage[stage][placement] = task
    return by_stage


def gpu_executors(ir: dict) -> set[str]:
    return {tasks["pod"]["executor"] for tasks in training_tasks(ir).values()} | {"exec-model-evaluation"}


def launcher_executors(ir: dict) -> set[str]:
    return {tasks["cluster_job"]["executor"] for tasks in training_tasks(ir).values()}


def guards_hold(guards: list[str], plan: dict[str, str]) -> bool:
    """Evaluate the stage-placement conditions (KFP's CEL subset: ==, !(), &&) for PLAN; others hold."""
    verdict = True
    for guard in guards:
        if "plan-training-" not in guard:
            continue
        expression = re.sub(
            r"inputs\.parameter_values\['pipelinechannel--plan-training-(\w+)'\]",
            lambda m: repr(plan[m.group(1)]),
            guard,
        )
        expression = expression.replace("&&", " and ").replace("!(", " not (")
        assert re.fullmatch(r"[\w\s'()=]+", expression), expression  # nothing but comparisons left
        verdict = verdict and eval(expression)  # noqa: S307 (a condition string from our own compiled IR)
    return verdict


def test_every_step_present_and_stages_chained_in_order(compiled):
    ir, _, _ = compiled
    tasks = all_tasks(ir)
    for step in (
        "vision-tower-pretraining",
        "plan-shards",
        "shard-curation",
        "merge-curation",
        "alignment-model-preparation",
        "shard-captioning",
        "caption-merge",
        "quality-gate",
        "pack-data",
        "dataset-versioning",
        "model-evaluation",
        "register-model",
        "publish-run-summary",
    ):
        assert step in tasks, step
    stages = training_tasks(ir)
    for stage, placements in stages.items():
        assert set(placements) == {"pod", "skip", "cluster_job"}, stage
    # each stage's model comes out of its placement branches (a OneOf of the three) and feeds the next stage
    branches = {}
    for key, task in all_tasks(ir).items():
        planned = set(re.findall(r"plan-training-(\w+)", json.dumps(task.get("inputs", {}))))
        if key.startswith("condition-branches") and planned:
            (stage,) = planned  # one stage's placement decides each branch set
            branches[stage] = (key, ir["components"][task["componentRef"]["name"]]["dag"])
    assert sorted(branches) == sorted(STAGE_NAMES)
    for stage, (_, dag) in branches.items():
        ((output, selectors),) = dag["outputs"]["artifacts"].items()
        assert len(selectors["artifactSelectors"]) == 3, stage
        assert {s["outputArtifactKey"] for s in selectors["artifactSelectors"]} == {
            f"pipelinechannel--{placements['key']}-model" for placements in stages[stage].values()
        }
    for previous, stage in zip(STAGE_NAMES, STAGE_NAMES[1:], strict=False):
        inputs = all_tasks(ir)[branches[stage][0]]["inputs"]["artifacts"]
        producers = {a.get("taskOutputArtifact", {}).get("producerTask") for a in inputs.values()}
        assert branches[previous][0] in producers, stage
        for placement in stages[stage].values():
            assert "init_model" in all_tasks(ir)[placement["key"]]["inputs"]["artifacts"], stage
    for placement in stages[STAGE_NAMES[0]].values():
        first_inputs = all_tasks(ir)[placement["key"]]["inputs"]["artifacts"]
        # the first stage (fresh weights) takes the caption-tag pre-trained tower; later ones a model
        assert "init_model" not in first_inputs
        assert (
            first_inputs["vision_tower"]["componentInputArtifact"]
            == "pipelinechannel--vision-tower-pretraining-tower"
        )
    # the packed shards + index are what is versioned, and what every stage in every placement trains on
    packed = all_tasks(ir)["dataset-versioning"]["inputs"]["artifacts"]["dataset"]["taskOutputArtifact"]
    assert packed == {"outputArtifactKey": "packed", "producerTask": "pack-data"}
    for placements in stages.values():
        for placement in placements.values():
            data = all_tasks(ir)[placement["key"]]["inputs"]["artifacts"]["data"]
            assert "dataset-versioning" in json.dumps(data) and "versioned" in json.dumps(data), data
    evaluated = all_tasks(ir)["model-evaluation"]["inputs"]["artifacts"]["model"]["taskOutputArtifact"]
    assert evaluated["producerTask"] == branches[STAGE_NAMES[-1]][0]


def test_shards_fan_out_and_are_collected(compiled):
    ir, _, _ = compiled
    loop = ir["components"]["comp-exit-handler-1"]["dag"]["tasks"]["for-loop-2"]
    assert loop["parameterIterator"]["items"]["inputParameter"].endswith("plan-shards-Output")
    tasks = all_tasks(ir)
    merge_input = tasks["merge-curation"]["inputs"]["artifacts"]["shards"]
    assert merge_input["taskOutputArtifact"]["producerTask"] == "for-loop-2"
    # each shard is captioned inside the same loop, from its own curated shard, and the captions collected
    loop_tasks = ir["components"][loop["componentRef"]["name"]]["dag"]["tasks"]
    assert {"shard-curation", "shard-captioning"} <= set(loop_tasks)
    curated = loop_tasks["shard-captioning"]["inputs"]["artifacts"]["curated"]["taskOutputArtifact"]
    assert curated == {"outputArtifactKey": "curated", "producerTask": "shard-curation"}
    assert loop_tasks["shard-captioning"]["retryPolicy"]["maxRetryCount"] >= 1
    captions = tasks["caption-merge"]["inputs"]["artifacts"]["shards"]["taskOutputArtifact"]
    assert captions["producerTask"] == "for-loop-2"
    assert tasks["quality-gate"]["inputs"]["artifacts"]["alignment_model"]["taskOutputArtifact"] == {
        "outputArtifactKey": "alignment_model",
        "producerTask": "alignment-model-preparation",
    }


def test_gate_condition_guards_training_and_else_stops_the_run(compiled):
    ir, _, _ = compiled
    gate = ir["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    (gate_branches,) = [task for key, task in gate.items() if key.startswith("condition-branches")]
    branches = ir["components"][gate_branches["componentRef"]["name"]]["dag"]["tasks"]
    passed, failed = (
        task for task in branches.values() if task["taskInfo"]["name"] in ("gate-passed", "gate-failed")
    )
    assert "quality-gate-Output" in passed["triggerPolicy"]["condition"]
    assert passed["triggerPolicy"]["condition"].endswith("== true")
    assert "!(" in failed["triggerPolicy"]["condition"]
    guarded = ir["components"][passed["componentRef"]["name"]]["dag"]["tasks"]
    assert {"dataset-versioning", "plan-training", "model-evaluation"} <= set(guarded)
    # the list of where outputs are runs in every run, so cached steps' outputs are still found
    assert guarded["list-run-outputs"].get("cachingOptions", {}).get("enableCache") is not True
    assert guarded["register-model"]["cachingOptions"]["enableCache"] is True
    assert set(ir["components"][failed["componentRef"]["name"]]["dag"]["tasks"]) == {"stop-on-failed-gate"}
    assert "exit-handler-1" in ir["root"]["dag"]["tasks"]
    assert (
        ir["root"]["dag"]["tasks"]["publish-run-summary"]["triggerPolicy"]["strategy"]
        == "ALL_UPSTREAM_TASKS_COMPLETED"
    )


def test_accelerators_only_on_gpu_steps(compiled):
    ir, _, _ = compiled
    gpu_type = load_params().cluster.gpu_pool.accelerator_type
    gpu = gpu_executors(ir)
    assert len(gpu) == len(STAGE_NAMES) + 1
    for name, executor in ir["deploymentSpec"]["executors"].items():
        accelerator = (executor["container"].get("resources") or {}).get("accelerator")
        if name in gpu:
            assert accelerator and accelerator["resourceType"] == gpu_type, name
        else:
            assert accelerator is None, name
    for tasks in training_tasks(ir).values():
        train = ir["deploymentSpec"]["executors"][tasks["pod"]["executor"]]["container"]["resources"]
        assert "num_gpus" in train["accelerator"]["resourceCount"]  # the UI's num_gpus sets the limit
        for placement in ("skip", "cluster_job"):  # the launcher and the pass-through request no GPU
            resources = ir["deploymentSpec"]["executors"][tasks[placement]["executor"]]["container"][
                "resources"
            ]
            assert "accelerator" not in resources, tasks[placement]["name"]


def test_kubernetes_placement_secrets_and_checkpoint_volume(compiled):
    ir, k8s, _ = compiled
    cluster = load_params().cluster
    gpu = gpu_executors(ir)
    for name, spec in k8s.items():
        pool = cluster.gpu_pool if name in gpu else cluster.cpu_pool
        assert spec["nodeSelector"]["labels"] == pool.node_selector, name
        tolerations = [{k: v for k, v in t.items() if v is not None} for t in spec.get("tolerations", [])]
        assert tolerations == [t.model_dump(exclude_none=True) for t in pool.tolerations], name
        if name == "exec-resolve-step-configs":
            assert "secretAsEnv" not in spec, name  # it reads only its parameters: no Secret
        elif name != "exec-publish-run-summary" and name != "exec-stop-on-failed-gate":
            secret = spec["secretAsEnv"][0]
            decodes_uploads = name in DECODING_EXECUTORS
            assert secret["secretName"] == (
                cluster.curation_minio_secret if decodes_uploads else cluster.minio_secret
            )
            assert {e["envVar"] for e in secret["keyToEnv"]} == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    for name in (gpu - {"exec-model-evaluation"}) | launcher_executors(ir):
        assert k8s[name]["pvcMount"][0]["mountPath"] == cluster.checkpoint_mount


def test_retries_on_preemptible_and_remote_calling_steps_only(compiled):
    ir, _, _ = compiled
    tasks = all_tasks(ir)
    # pre-emptible GPU pods; TrainJob launchers (a retry follows the running job, a failed one stays failed);
    # curation shards, which fail only when storage/disk is down past its retry budget (issue 21); caption
    # shards, which call remote services and resume from the checkpoint volume when retried
    retried_executors = (
        gpu_executors(ir) | launcher_executors(ir) | {"exec-shard-curation", "exec-shard-captioning"}
    )
    for task in leaf_tasks(ir):
        assert ("retryPolicy" in tasks[task["key"]]) == (task["executor"] in retried_executors), task["name"]


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


def test_gpu_steps_get_a_memory_backed_shm(compiled):
    ir, k8s, _ = compiled
    for name in gpu_executors(ir):
        (shm,) = [m for m in k8s[name].get("emptyDirMounts", []) if m["mountPath"] == "/dev/shm"]
        assert shm["medium"] == "Memory" and shm["sizeLimit"], name
    runtime = yaml.safe_load(
        (
            Path(__file__).resolve().parents[1] / "manifests/base/trainer/clustertrainingruntime.yaml"
        ).read_text()
    )
    pod = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    (dshm,) = [v for v in pod["volumes"] if v["name"] == "dshm"]
    assert dshm["emptyDir"]["sizeLimit"] == shm["sizeLimit"], "TrainJob nodes get the same /dev/shm"


def test_trainjob_launcher_is_a_cpu_task_that_knows_its_pod(compiled):
    ir, k8s, _ = compiled
    cluster = load_params().cluster
    for name in launcher_executors(ir):
        resources = ir["deploymentSpec"]["executors"][name]["container"]["resources"]
        assert "accelerator" not in resources, name
        assert k8s[name]["nodeSelector"]["labels"] == cluster.cpu_pool.node_selector
        assert not k8s[name].get("tolerations"), f"{name} must not squat GPU nodes"
        fields = {e["name"]: e["fieldPath"] for e in k8s[name]["fieldPathAsEnv"]}
        assert fields == {
            "KANGAROO_POD_NAME": "metadata.name",
            "KANGAROO_POD_UID": "metadata.uid",
            "KANGAROO_POD_NAMESPACE": "metadata.namespace",
        }
    for tasks in training_tasks(ir).values():
        assert tasks["cluster_job"]["guards"][-1].endswith("== 'cluster_job'")
        inputs = all_tasks(ir)[tasks["cluster_job"]["key"]]["inputs"]["parameters"]
        assert inputs["cluster_job"]["runtimeValue"]["constant"] is True


def test_plan_outputs_are_the_curriculum(compiled):
    ir, _, _ = compiled
    outputs = ir["components"]["comp-plan-training"]["outputDefinitions"]["parameters"]
    assert sorted(outputs) == sorted(STAGE_NAMES)


@pytest.mark.parametrize(
    "stages, num_nodes",
    [(["instruction_tuning", "long_video_tuning"], 1), (["long_video_tuning"], 4), (list(STAGE_NAMES), 1)],
)
def test_a_stage_left_out_runs_no_gpu_task(compiled, stages, num_nodes):
    """The real plan function's outputs, run through the compiled DAG's conditions: exactly one task per stage
    runs; skipped stages and TrainJob launchers run on the CPU pool, only in-pod stages start a GPU task."""
    ir, _, _ = compiled
    configs = resolve_step_configs.python_func(
        params_yaml=(Path(__file__).resolve().parents[1] / "params.yaml").read_text(),
        profile="paper",
        overrides=[],
    )
    plan = plan_training.python_func(
        step_config=configs.placement, stages=stages, num_nodes=num_nodes
    )._asdict()
    gpu = gpu_executors(ir)
    for stage, tasks in training_tasks(ir).items():
        running = [placement for placement, task in tasks.items() if guards_hold(task["guards"], plan)]
        assert running == [plan[stage]], stage
        starts_gpu = tasks[running[0]]["executor"] in gpu
        assert starts_gpu == (stage in stages and num_nodes == 1), (stage, running)


def test_kubernetes_native_form_is_the_same_pipeline(tmp_path):
    """`make compile` also writes Pipeline + PipelineVersion objects (kubectl apply -f registers them); they
    validate against KFP 2.17.0's CRDs and carry the same pipeline spec as the IR YAML."""
    from kangaroo.k8s.crd_schema import CRD_DIR, validate_custom_object
    from pipelines.compile import compile_kubernetes_manifest, kubernetes_manifest_path

    ir_path = compile_pipeline(tmp_path / "kangaroo_pipeline.yaml")
    manifest = compile_kubernetes_manifest(kubernetes_manifest_path(ir_path))
    assert manifest.name == "kangaroo_pipeline.k8s.yaml"
    pipeline, version = yaml.safe_load_all(manifest.read_text())
    cluster = load_params().cluster
    assert (pipeline["kind"], version["kind"]) == ("Pipeline", "PipelineVersion")
    for doc, plural in ((pipeline, "pipelines"), (version, "pipelineversions")):
        assert doc["apiVersion"] == "pipelines.kubeflow.org/v2beta1"
        assert doc["metadata"]["namespace"] == cluster.namespace
        validate_custom_object(doc, CRD_DIR / f"pipelines.kubeflow.org_{plural}.yaml", "v2beta1")
    assert version["spec"]["pipelineName"] == pipeline["metadata"]["name"] == "kangaroo-flow"
    ir, platform = yaml.safe_load_all(ir_path.read_text())
    assert version["spec"]["pipelineSpec"] == ir
    assert version["spec"]["platformSpec"] == platform
