"""KFP cache keys follow each step's own config: in the compiled pipeline every task's only config input is
its own step's output of the uncached resolve task, and that output (the real resolve function) changes
exactly when one of the step's settings or the library code changes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.step_config import resolve_step_configs
from kangaroo.step_config import PIPELINE_STEPS
from kangaroo.train.settings import STAGE_NAMES
from pipelines.compile import compile_pipeline

ROOT = Path(__file__).resolve().parents[1]
RESOLVER = "resolve-step-configs"
CONFIG_PARAMETERS = {"params_yaml", "profile", "overrides"}
# task (display name) -> the step whose resolved config it runs from
EXPECTED_STEP = {
    "pre-train vision tower": "pretrain_vision",
    "alignment model": "alignment_model",
    "fingerprint inputs": "curate",
    "plan shards": "curate",
    "curate shard": "curate",
    "caption shard": "caption",
    "quality gate": "validate",
    "pack training data": "pack",
    "version dataset": "version_dataset",
    "plan stage placement": "placement",
    "evaluate": "evaluate",
    **{
        f"{stage}{suffix}": f"train_{stage}"
        for stage in STAGE_NAMES
        for suffix in ("", " (skipped)", " (TrainJob)")
    },
}


def leaf_inputs(ir: dict) -> dict[str, dict[str, tuple]]:
    """display name -> {input parameter: its origin}, following the pipeline channels through every nested DAG
    (exit handler, loop, conditions): ("task", producer, output key) or ("pipeline", parameter) or
    ("constant", value)."""
    found: dict[str, dict[str, tuple]] = {}

    def origin(spec: dict, env: dict[str, tuple]) -> tuple:
        if "taskOutputParameter" in spec:
            out = spec["taskOutputParameter"]
            return ("task", out["producerTask"], out["outputParameterKey"])
        if "componentInputParameter" in spec:
            name = spec["componentInputParameter"]
            return env.get(name, ("pipeline", name))
        return ("constant", json.dumps(spec.get("runtimeValue", spec)))

    def walk(dag: dict, env: dict[str, tuple]) -> None:
        for task in dag["tasks"].values():
            inputs = {
                name: origin(spec, env) for name, spec in task.get("inputs", {}).get("parameters", {}).items()
            }
            component = ir["components"][task["componentRef"]["name"]]
            if "dag" in component:
                walk(component["dag"], inputs)
            else:
                name = task["taskInfo"]["name"]
                assert name not in found or found[name] == inputs, name
                found[name] = inputs

    walk(ir["root"]["dag"], {})
    return found


@pytest.fixture(scope="module")
def ir(tmp_path_factory) -> dict:
    path = compile_pipeline(tmp_path_factory.mktemp("ir") / "kangaroo_pipeline.yaml")
    return next(yaml.safe_load_all(path.read_text()))


def test_every_task_consumes_exactly_its_own_steps_config(ir):
    tasks = leaf_inputs(ir)
    assert set(EXPECTED_STEP) <= set(tasks)
    outputs = ir["components"][f"comp-{RESOLVER}"]["outputDefinitions"]["parameters"]
    assert list(outputs) == sorted(PIPELINE_STEPS) and {o["parameterType"] for o in outputs.values()} == {
        "STRING"
    }
    for name, inputs in tasks.items():
        if name == "resolve config":
            assert {src[1] for src in inputs.values()} == CONFIG_PARAMETERS
            continue
        from_resolver = {key: src for key, src in inputs.items() if src[:2] == ("task", RESOLVER)}
        # nobody but the resolver sees the whole params text, the profile or the overrides
        whole_config = [
            src for src in inputs.values() if src[0] == "pipeline" and src[1] in CONFIG_PARAMETERS
        ]
        assert not whole_config, name
        if name not in EXPECTED_STEP:
            assert not from_resolver, name  # merges, register, summaries: artifacts only
            continue
        expected = {"step_config": ("task", RESOLVER, EXPECTED_STEP[name])}
        if name.endswith("(TrainJob)"):  # the launcher also reads where to submit the job
            expected["placement_config"] = ("task", RESOLVER, "placement")
        assert from_resolver == expected, name
    resolver = ir["root"]["dag"]["tasks"]["exit-handler-1"]
    resolver = ir["components"][resolver["componentRef"]["name"]]["dag"]["tasks"][RESOLVER]
    assert resolver.get("cachingOptions", {}).get("enableCache") is not True  # runs in every run


def resolve(profile: str = "tiny", overrides: tuple[str, ...] = ()) -> dict[str, dict]:
    """The resolve task's function, as the local runner and the cluster run it."""
    texts = resolve_step_configs.python_func(
        params_yaml=(ROOT / "params.yaml").read_text(), profile=profile, overrides=list(overrides)
    )._asdict()
    return {step: json.loads(text) for step, text in texts.items()}


def changed(before: dict[str, dict], after: dict[str, dict]) -> set[str]:
    return {step for step in before if before[step] != after[step]}


def test_an_eval_key_changes_only_the_evaluate_input():
    base = resolve()
    assert list(base) == list(PIPELINE_STEPS)
    edited = resolve(overrides=("eval.batch_size=3",))
    assert changed(base, edited) == {"evaluate"}
    assert edited["evaluate"]["settings"]["eval"]["batch_size"] == 3 != base["evaluate"]["settings"]["eval"]
    assert resolve() == base  # resolving again is byte-for-byte the same: a cache hit downstream


def test_a_stage_learning_rate_changes_only_that_stage():
    base = resolve("paper")
    edited = resolve("paper", ("train.stages.instruction_tuning.lr=3e-4",))
    assert changed(base, edited) == {"train_instruction_tuning"}
    # what follows it sees the change through its input model: its init_model artifact is that stage's output
    assert (
        edited["train_instruction_tuning"]["settings"]["train"]["stages"]["instruction_tuning"]["lr"] == 3e-4
    )


def test_placement_changes_only_the_placement_input():
    assert changed(resolve(), resolve(overrides=("cluster.retries=7",))) == {"placement"}


def test_a_library_edit_changes_every_steps_code_version(tmp_path):
    """The resolve task in a process running a copy of the library, before and after a one-line edit (as a
    new image would): every step's document changes, in its code version only."""
    copy = tmp_path / "kangaroo"
    shutil.copytree(ROOT / "kangaroo", copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    code = (
        "import json, sys; from components.step_config import resolve_step_configs; "
        "print(json.dumps(resolve_step_configs.python_func(params_yaml=open(sys.argv[1]).read(), "
        "profile='tiny', overrides=[])._asdict()))"
    )

    def documents() -> dict[str, dict]:
        result = subprocess.run(
            [sys.executable, "-c", code, str(ROOT / "params.yaml")],
            cwd=tmp_path,
            env={
                "PYTHONPATH": f"{tmp_path}:{ROOT}",
                "PATH": "/usr/bin:/bin",
                "KANGAROO_PARAMS": str(ROOT / "params.yaml"),
            },
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        texts = json.loads(result.stdout.strip().splitlines()[-1])
        return {step: json.loads(text) for step, text in texts.items()}

    before = documents()
    assert len({json.dumps(doc["code_version"]) for doc in before.values()}) == 1  # one code, one version
    (copy / "eval" / "scoring.py").write_text((copy / "eval" / "scoring.py").read_text() + "\n# edited\n")
    after = documents()
    assert changed(before, after) == set(PIPELINE_STEPS)
    for step in PIPELINE_STEPS:
        assert after[step]["code_version"]["source"] != before[step]["code_version"]["source"], step
        assert after[step]["settings"] == before[step]["settings"], step


def test_the_shard_plan_is_keyed_on_the_inputs_content(ir):
    """The uncached fingerprint task's output (keys + ETags of the uploads) is an input of the cached plan:
    new uploads under the same input_uri change the plan's key, unchanged ones leave it a cache hit."""
    tasks = leaf_inputs(ir)
    assert tasks["plan shards"]["input_fingerprint"] == ("task", "fingerprint-inputs", "Output")
    assert (
        tasks["fingerprint inputs"]["input_uri"]
        == tasks["plan shards"]["input_uri"]
        == ("pipeline", "input_uri")
    )
    exit_handler = ir["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    assert exit_handler["fingerprint-inputs"].get("cachingOptions", {}).get("enableCache") is not True
    assert exit_handler["plan-shards"]["cachingOptions"]["enableCache"] is True
