"""dvc.yaml: the whole DAG parses and is wired as the KFP pipeline is, and the first stage really runs with
`dvc repro` on the tiny profile (in a throw-away copy of the project); a second `dvc repro` is a no-op."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
TRAIN_STAGES = [
    "image_text_pretrain",
    "video_text_pretrain",
    "pretrain_refinement",
    "instruction_tuning",
    "long_video_tuning",
]
ALL_STAGES = [
    "synth",
    "curate",
    "caption",
    "validate",
    "pack",
    "pretrain_vision",
    *[f"train_{s}" for s in TRAIN_STAGES],
    "evaluate",
]
# The blocks the KFP components read: every one must be tracked by some stage.
KFP_BLOCKS = {"synth", "video", "curation", "caption", "quality", "model", "train", "eval"}


def dvc(*args: str, cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        [str(VENV_BIN / "dvc"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"dvc {args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The project's code, params.yaml, dvc.yaml and DVC config in a new git repo, with a small corpus."""
    repo = tmp_path_factory.mktemp("dvc-project")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "kangaroo", repo / "kangaroo", ignore=ignore)
    (repo / ".dvc").mkdir()
    for name in ("params.yaml", "dvc.yaml", ".dvc/config", ".dvc/.gitignore", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, repo / name)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["synth"].update(num_videos=10, num_images=4, num_long_videos=0, num_motion_clips=0, workers=1)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",  # `kangaroo`, as in an activated venv
        "PYTHONPATH": str(repo),  # the copy's code runs, not the editable install's
    }
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=test"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "copy"], cwd=repo, check=True)
    return repo, env


def test_dvc_yaml_declares_every_step_with_params_outs_metrics_plots():
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    stages = spec["stages"]
    assert list(stages) == ALL_STAGES
    tracked = {p for stage in stages.values() for p in stage["params"]}
    assert KFP_BLOCKS <= tracked
    assert all({"profile", "profiles"} <= set(stage["params"]) for stage in stages.values())
    for name in TRAIN_STAGES:
        stage = stages[f"train_{name}"]
        assert f"kangaroo train --stage {name} --out data/models/{name}" in " ".join(stage["cmd"])
        assert stage["outs"] == [f"data/models/{name}/model"]
        assert f"data/models/{name}/metrics.json" in stage["plots"][0]
    assert "data/eval/metrics.json" in stages["evaluate"]["metrics"][0]
    # the first stage loads the caption-tag pre-trained tower (the pretrain_vision stage's output)
    first = stages["train_image_text_pretrain"]
    assert "--vision-tower data/models/vision_tower" in " ".join(first["cmd"])
    assert stages["pretrain_vision"]["outs"] == ["data/models/vision_tower"]
    assert "data/models/vision_tower" in first["deps"]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert set(params["train"]["stages"]) == set(TRAIN_STAGES)


def test_dag_is_wired_like_the_pipeline(project_copy):
    repo, env = project_copy
    dot = dvc("dag", "--dot", cwd=repo, env=env)
    edges = {
        tuple(part.strip().strip('"') for part in line.strip(" ;").split("->"))
        for line in dot.splitlines()
        if "->" in line
    }
    train = [f"train_{s}" for s in TRAIN_STAGES]
    chain = ["synth", "curate", "caption", "validate", "pack", *train, "evaluate"]
    for upstream, downstream in [*zip(chain, chain[1:], strict=False), ("pretrain_vision", chain[5])]:
        assert (upstream, downstream) in edges, f"{upstream} -> {downstream} missing from {sorted(edges)}"
    status = dvc("status", cwd=repo, env=env)
    assert all(f"{stage}:" in status for stage in ALL_STAGES)


def test_repro_synth_then_noop(project_copy):
    repo, env = project_copy
    dry = dvc("repro", "--dry", "synth", cwd=repo, env=env)
    assert "kangaroo synth --out data/corpus" in dry and not (repo / "data" / "corpus").exists()

    dvc("repro", "synth", cwd=repo, env=env)
    rows = [json.loads(line) for line in (repo / "data/corpus/ground_truth.jsonl").read_text().splitlines()]
    assert len(rows) == 10 and all((repo / "data/corpus" / row["video"]).is_file() for row in rows)
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["synth"]
    assert lock["outs"][0]["path"] == "data/corpus" and lock["outs"][0]["md5"].endswith(".dir")
    assert lock["params"]["params.yaml"]["synth"]["num_videos"] == 10

    again = dvc("repro", "synth", cwd=repo, env=env)
    assert "didn't change, skipping" in again and "Running stage" not in again
    assert yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["synth"] == lock

    next_stage = dvc("repro", "--dry", "curate", cwd=repo, env=env)
    assert "Running stage 'curate'" in next_stage and "Running stage 'synth'" not in next_stage

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["synth"]["num_videos"] = 11
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert "modified:           synth" in dvc("status", "synth", cwd=repo, env=env)


def test_training_curves_and_metrics_show(tmp_path):
    """`kangaroo dvc-plot-data` output and summary.json are what `dvc plots/metrics show` read."""
    from kangaroo.storage.plots import jsonl_to_json

    repo = tmp_path / "repo"
    (repo / ".dvc").mkdir(parents=True)
    for name in ("dvc.yaml", ".dvc/config", "params.yaml"):
        shutil.copy(ROOT / name, repo / name)
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    for i, name in enumerate(TRAIN_STAGES):
        folder = repo / "data" / "models" / name
        folder.mkdir(parents=True)
        rows = [{"step": step, "loss": 5.0 - i - 0.1 * step, "lr": 1e-3} for step in range(1, 4)]
        (folder / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
        assert jsonl_to_json(folder / "metrics.jsonl") == folder / "metrics.json"
        assert json.loads((folder / "metrics.json").read_text()) == rows
        (folder / "summary.json").write_text(json.dumps({"final_loss": rows[-1]["loss"], "steps": 3}))
    (repo / "data" / "eval").mkdir()
    (repo / "data" / "eval" / "metrics.json").write_text(json.dumps({"accuracy": 0.61, "chance": 0.25}))

    metrics = json.loads(dvc("metrics", "show", "--json", cwd=repo, env=env))
    by_file = next(iter(metrics.values()))["data"]
    assert by_file["data/eval/metrics.json"]["data"]["accuracy"] == 0.61
    assert by_file["data/models/long_video_tuning/summary.json"]["data"]["steps"] == 3

    plots = json.loads(dvc("plots", "show", "--json", cwd=repo, env=env))
    assert not plots.get("errors"), plots["errors"]
    values = plots["data"]["training_loss"][0]["content"]["data"]["values"]  # the one 5-curve chart
    assert len(values) == 5 * 3
    assert {v["filename"].split("/")[0] for v in values} == set(TRAIN_STAGES)
