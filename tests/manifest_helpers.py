"""Render the Kustomize overlays from a temporary copy of the repo's manifests (the git-ignored inputs are
made there by the real `prepare_manifest_inputs`, so the working tree is never touched)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from kangaroo.k8s.manifest_inputs import prepare_manifest_inputs

ROOT = Path(__file__).resolve().parents[1]
KUBECTL = Path(sys.executable).with_name("kubectl")
KUBERNETES_VALIDATE = Path(sys.executable).with_name("kubernetes-validate")
OVERLAYS = ("local", "gpu")
TARGET_KUBERNETES = "1.31.0"  # oldest minor still supported by the major clouds' managed Kubernetes
NEWEST_KUBERNETES = "1.37.0"  # newest schemas kubernetes-validate ships (= the pinned kubectl's minor)


def copy_manifests(destination: Path) -> Path:
    """A repo-shaped folder with manifests/ and params.yaml, its generated inputs prepared."""
    shutil.copytree(
        ROOT / "manifests",
        destination / "manifests",
        ignore=shutil.ignore_patterns("*.env", "params.yaml"),
    )
    shutil.copyfile(ROOT / "params.yaml", destination / "params.yaml")
    prepare_manifest_inputs(destination)
    return destination


def kustomize(repo: Path, overlay: str) -> str:
    """`kubectl kustomize manifests/overlays/<overlay>` output (fails the test on a render error)."""
    result = subprocess.run(
        [str(KUBECTL), "kustomize", str(repo / "manifests" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def objects(rendered: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def pod_specs(docs: list[dict]) -> list[tuple[str, dict]]:
    """(kind/name, pod spec) of every workload in the rendered objects."""
    specs = []
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
            specs.append((f"{kind}/{name}", doc["spec"]["template"]["spec"]))
        elif kind == "CronJob":
            specs.append((f"{kind}/{name}", doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
        elif kind == "Pod":
            specs.append((f"{kind}/{name}", doc["spec"]))
        elif kind == "ClusterTrainingRuntime":  # the pods of every TrainJob that refers to it
            for job in doc["spec"]["template"]["spec"]["replicatedJobs"]:
                specs.append((f"{kind}/{name}/{job['name']}", job["template"]["spec"]["template"]["spec"]))
    return specs


# Compiled-pipeline executors that read uploaded media: listing them (fingerprint, shard plan), curation,
# per-shard captioning, and the gate (alignment scores, the report's frame strips). They get the scoped
# MinIO user and no API egress.
DECODING_EXECUTORS = {
    "exec-fingerprint-inputs",
    "exec-plan-shards",
    "exec-shard-curation",
    "exec-shard-captioning",
    "exec-quality-gate",
}
