"""dvc.yaml: the whole DAG runs with `dvc repro` in a throw-away copy of the project (a small corpus, a
couple of optimizer steps per stage), `dvc metrics show` / `dvc plots show` read its results, and each stage's
cache key is its own resolved config: an edit to `eval` touches only `evaluate`, one to a curriculum stage
only that stage, an edit to the library every stage."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kangaroo.step_config import STEP_SETTINGS
from kangaroo.train.settings import STAGE_NAMES

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
TRAIN_STAGES = [f"train@{name}" for name in STAGE_NAMES]
# in the order `dvc repro` runs them: the alignment model needs the tower before captioning
STEP_STAGES = [
    "synth", "curate", "pretrain_vision", "alignment_model", "caption", "validate", "pack", *TRAIN_STAGES,
    "evaluate",
]  # fmt: skip
ALL_STAGES = ["resolve_config", *STEP_STAGES]


def dvc(*args: str, cwd: Path, env: dict[str, str], timeout: int = 300) -> str:
    result = subprocess.run(
        [str(VENV_BIN / "dvc"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"dvc {args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


def step_file(stage: str) -> str:
    return f"data/config/{stage.replace('@', '_')}.json"


def ran(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


def changed_in_status(status: str) -> set[str]:
    """Stage names `dvc status` lists (lines `name:` at the start)."""
    return {line[:-1] for line in status.splitlines() if line.endswith(":") and not line.startswith("\t")}


def edit_profile(repo: Path, block: str, key: str, value) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    node = params["profiles"]["tiny"]
    for part in block.split("."):
        node = node.setdefault(part, {})
    node[key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def small_run(params: dict) -> dict:
    """The tiny profile on ~a dozen clips with one or two optimizer steps per stage: minutes, not 13."""
    tiny = params["profiles"]["tiny"]
    tiny["synth"] = {
        "num_videos": 12,
        "num_images": 48,
        "num_long_videos": 0,
        "num_motion_clips": 4,
        "workers": 1,
    }
    # a dozen clips keep ~2 and reject a third as planted-unreadable: the gate still runs every check
    # a 2-step tower and a 20-step aligner cannot align captions (test_quality_alignment.py covers that): the
    # gate still scores every row and checks the share
    tiny["quality"].update(
        min_rows=2, min_kept_fraction=0.05, max_decode_error_fraction=0.5, max_misaligned_fraction=1.0
    )
    tiny.setdefault("caption", {}).setdefault("alignment", {}).setdefault("train", {})["steps"] = 20
    tiny["train"]["vision_pretrain"].update(steps=2, batch_size=8, eval_images=8)
    for stage in tiny["train"]["stages"].values():
        stage.update(max_steps=2, checkpoint_every=0, max_frames=min(stage["max_frames"], 4))
        stage.update(context_length=512, batch_tokens=512)
    tiny["eval"] = {"num_frames": 4}
    return params


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The project's code, params.yaml, dvc.yaml and DVC config in a new git repo, with the small run."""
    repo = tmp_path_factory.mktemp("dvc-project")
    shutil.copytree(
        ROOT / "kangaroo", repo / "kangaroo", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    (repo / ".dvc").mkdir()
    for name in ("params.yaml", "dvc.yaml", ".dvc/config", ".dvc/.gitignore", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, repo / name)
    params = small_run(yaml.safe_load((repo / "params.yaml").read_text()))
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",  # `kangaroo`, as in an activated venv
        "PYTHONPATH": str(repo),  # the copy's code runs (and is the code version), not the editable install's
    }
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=test"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "copy"], cwd=repo, check=True)
    return repo, env


def test_every_stage_reads_only_its_resolved_config():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert list(stages) == [
        "resolve_config",
        "synth",
        "curate",
        "pretrain_vision",
        "alignment_model",
        "caption",
        "validate",
        "pack",
        "train",
        "evaluate",
    ]
    assert list(stages["train"]["foreach"]) == list(STAGE_NAMES)  # one template, not five copies
    assert (
        "params.yaml" in stages["resolve_config"]["deps"] and "kangaroo" in stages["resolve_config"]["deps"]
    )
    for name, stage in stages.items():
        if name == "resolve_config":
            continue
        spec = stage.get("do", stage)
        own = "data/config/train_${key}.json" if name == "train" else f"data/config/{name}.json"
        assert "params" not in spec, f"{name} tracks params.yaml keys instead of its resolved config"
        assert own in spec["deps"] and not [d for d in spec["deps"] if "config" in d and d != own], name
        assert f"--params {own}" in " ".join(spec["cmd"] if isinstance(spec["cmd"], list) else [spec["cmd"]])
    assert {step_file(s).split("/")[-1][:-5] for s in STEP_STAGES} <= set(STEP_SETTINGS)


def test_dry_run_plans_every_stage_and_dag_is_wired(project_copy):
    repo, env = project_copy
    # a checkout without data/: plans every stage only with patches/dvc-3.67.1-dry-run-missing-deps.patch
    dry = dvc("repro", "--dry", cwd=repo, env=env)
    assert ran(dry) == ALL_STAGES
    dot = dvc("dag", "--dot", cwd=repo, env=env)
    edges = {
        tuple(part.strip().strip('"') for part in line.strip(" ;").split("->"))
        for line in dot.splitlines()
        if "->" in line
    }
    chain = ["synth", "curate", "caption", "validate", "pack", *TRAIN_STAGES, "evaluate"]
    expected = [*zip(chain, chain[1:], strict=False), ("pretrain_vision", TRAIN_STAGES[0])]
    expected += [("resolve_config", stage) for stage in STEP_STAGES]
    # the alignment model is trained over the tower, then scores captions and the gate's check
    expected += [("pretrain_vision", "alignment_model"), ("alignment_model", "caption")]
    expected += [("alignment_model", "validate")]
    missing = [edge for edge in expected if edge not in edges]
    assert not missing, f"{missing} missing from {sorted(edges)}"


@pytest.fixture(scope="module")
def reproduced(project_copy) -> tuple[Path, dict[str, str], str]:
    """`dvc repro` of the whole DAG, once for the module."""
    repo, env = project_copy
    return repo, env, dvc("repro", cwd=repo, env=env, timeout=1200)


def test_whole_dag_reproduces_and_reports(reproduced):
    repo, env, first = reproduced
    assert ran(first) == ALL_STAGES
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    assert set(lock) == set(ALL_STAGES)
    corpus = [json.loads(line) for line in (repo / "data/corpus/ground_truth.jsonl").read_text().splitlines()]
    assert len(corpus) == 12

    metrics = json.loads(dvc("metrics", "show", "--json", cwd=repo, env=env))
    by_file = next(iter(metrics.values()))["data"]
    accuracy = by_file["data/eval/metrics.json"]["data"]["accuracy"]
    assert 0.0 <= accuracy <= 1.0
    for name in STAGE_NAMES:
        summary = by_file[f"data/models/{name}/summary.json"]["data"]
        assert summary["steps"] == 2, (name, summary)

    plots = json.loads(dvc("plots", "show", "--json", cwd=repo, env=env))
    assert not plots.get("errors"), plots["errors"]
    values = plots["data"]["training_loss"][0]["content"]["data"]["values"]  # the one five-curve chart
    assert {v["filename"].split("/")[0] for v in values} == set(STAGE_NAMES)
    assert len(values) == 2 * len(STAGE_NAMES) and all(v["loss"] > 0 for v in values)

    assert ran(dvc("repro", cwd=repo, env=env)) == []  # nothing changed, nothing runs


def test_cache_keys_follow_each_steps_own_settings_and_the_code(reproduced):
    repo, env, _ = reproduced

    edit_profile(repo, "eval", "batch_size", 3)
    # before the step files are rewritten only the resolver is out of date (it reads params.yaml)
    assert changed_in_status(dvc("status", cwd=repo, env=env)) == {"resolve_config"}
    dvc("repro", "resolve_config", cwd=repo, env=env)
    assert changed_in_status(dvc("status", cwd=repo, env=env)) == {"evaluate"}
    assert ran(dvc("repro", cwd=repo, env=env)) == ["evaluate"]
    assert json.loads((repo / step_file("evaluate")).read_text())["settings"]["eval"]["batch_size"] == 3

    edit_profile(repo, "train.stages.instruction_tuning", "lr", 3.0e-4)
    dvc("repro", "resolve_config", cwd=repo, env=env)
    assert changed_in_status(dvc("status", cwd=repo, env=env)) == {"train@instruction_tuning"}

    library_file = repo / "kangaroo" / "train" / "loop.py"
    library_file.write_text(library_file.read_text() + "\n# an edit to the library\n")
    dvc("repro", "resolve_config", cwd=repo, env=env)
    assert changed_in_status(dvc("status", cwd=repo, env=env)) == set(STEP_STAGES)
