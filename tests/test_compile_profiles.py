"""`make compile`: one pipeline per profile (its placement, its `profile` default) whose image is referenced
by digest or by a tag derived from the commit, never a fixed tag, and whose tasks carry that reference in
their env (the resolve task records it in every step's code version)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kangaroo.config import load_params
from kangaroo.step_config import IMAGE_DIGEST_ENV

ROOT = Path(__file__).resolve().parents[1]
DIGEST = "sha256:" + "3f" * 32
REPOSITORY = load_params().cluster.image.rsplit(":", 1)[0]


def compile_for(out: Path, *args: str) -> tuple[dict, dict, dict]:
    """`python -m pipelines.compile` as `make compile` runs it: (IR, k8s executors, PipelineVersion)."""
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.compile", "--out", str(out), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ir, platform = yaml.safe_load_all(out.read_text())
    _, version = yaml.safe_load_all(out.with_name(f"{out.stem}.k8s{out.suffix}").read_text())
    return ir, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"], version


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return compile_for(tmp_path_factory.mktemp("tiny") / "pipeline.yaml", "--profile", "tiny")


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    out = tmp_path_factory.mktemp("paper") / "pipeline.yaml"
    return compile_for(out, "--profile", "paper", "--image-digest", DIGEST)


def images_and_env(ir: dict) -> tuple[set[str], list[dict[str, str]]]:
    executors = ir["deploymentSpec"]["executors"].values()
    envs = [{e["name"]: e["value"] for e in x["container"].get("env", [])} for x in executors]
    return {x["container"]["image"] for x in executors}, envs


def test_image_is_tagged_with_the_commit_without_a_digest(tiny):
    ir, _, version = tiny
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    images, envs = images_and_env(ir)
    (image,) = images
    assert re.fullmatch(rf"{re.escape(REPOSITORY)}:git-{head.stdout.strip()[:12]}(-dirty)?", image), image
    assert image != load_params().cluster.image  # never the fixed tag
    for env in envs:
        assert env["KANGAROO_IMAGE"] == env[IMAGE_DIGEST_ENV] == image
    assert version["metadata"]["name"].startswith("kangaroo-flow-tiny-git-")


def test_image_by_digest_reaches_every_task_env(paper):
    ir, _, version = paper
    images, envs = images_and_env(ir)
    assert images == {f"{REPOSITORY}@{DIGEST}"}
    assert all(env[IMAGE_DIGEST_ENV] == f"{REPOSITORY}@{DIGEST}" for env in envs)
    assert version["metadata"]["name"] == f"kangaroo-flow-paper-{'3f' * 6}"


def test_a_bad_digest_is_refused_in_one_line(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.compile",
            "--out",
            str(tmp_path / "p.yaml"),
            "--image-digest",
            "v1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "IMAGE_DIGEST 'v1'" in result.stderr
    assert not (tmp_path / "p.yaml").exists()


def retries(ir: dict) -> dict[str, int]:
    found = {}

    def walk(dag: dict) -> None:
        for task in dag["tasks"].values():
            component = ir["components"][task["componentRef"]["name"]]
            if "dag" in component:
                walk(component["dag"])
            else:
                found[task["taskInfo"]["name"]] = task.get("retryPolicy", {}).get("maxRetryCount", 0)

    walk(ir["root"]["dag"])
    return found


def test_each_profile_compiles_its_own_placement_and_default(tiny, paper):
    (tiny_ir, _, _), (paper_ir, _, _) = tiny, paper
    for ir, profile in ((tiny_ir, "tiny"), (paper_ir, "paper")):
        assert ir["root"]["inputDefinitions"]["parameters"]["profile"]["defaultValue"] == profile
        cluster = load_params(profile=profile).cluster
        assert {r for name, r in retries(ir).items() if name == "evaluate"} == {cluster.retries}
        assert retries(ir)["curate shard"] == cluster.retries
    assert load_params(profile="paper").cluster.retries != load_params(profile="tiny").cluster.retries
    assert retries(paper_ir) != retries(tiny_ir)
