"""Offline validation of generated custom objects (Trainer v2 TrainJob / ClusterTrainingRuntime, the legacy
PyTorchJob): the CRD's OpenAPI v3 schema (manifests/crds/, vendored at a pinned commit) with the API server's
strict field validation, plus the official core/v1 schema of the target Kubernetes version for every embedded
pod template (kubernetes-validate).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from kangaroo.k8s.errors import TrainingJobError

CRD_DIR = Path(__file__).resolve().parents[2] / "manifests" / "crds"
CRD_FILE = CRD_DIR / "kubeflow.org_pytorchjobs.yaml"
TRAINJOB_CRD = CRD_DIR / "trainer.kubeflow.org_trainjobs.yaml"
RUNTIME_CRD = CRD_DIR / "trainer.kubeflow.org_clustertrainingruntimes.yaml"
KUBERNETES_VERSION = "1.31.0"  # oldest minor the major clouds' managed Kubernetes still support


class CustomObjectSchemaError(TrainingJobError):
    """A custom object does not match its CRD schema, or an embedded pod template the core/v1 schema."""


PyTorchJobSchemaError = CustomObjectSchemaError


@lru_cache(maxsize=8)
def crd_schema(crd_file: str | Path = CRD_FILE, version: str = "v1") -> dict[str, Any]:
    """The CRD's openAPIV3Schema for VERSION, closed like `kubectl create --validate=strict`: objects with
    declared properties reject unknown fields unless marked x-kubernetes-preserve-unknown-fields."""
    crd = yaml.safe_load(Path(crd_file).read_text())
    (entry,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    return close_objects(copy.deepcopy(entry["schema"]["openAPIV3Schema"]))


def close_objects(schema: Any) -> Any:
    if isinstance(schema, dict):
        for value in schema.values():
            close_objects(value)
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        for item in schema:
            close_objects(item)
    return schema


def validate_custom_object(
    obj: dict[str, Any],
    crd_file: str | Path,
    version: str,
    pod_templates: dict[str, dict[str, Any]] | None = None,
    kubernetes_version: str = KUBERNETES_VERSION,
) -> None:
    """Raise CustomObjectSchemaError listing every violation: the CRD schema, then each pod template
    (role -> PodTemplateSpec) against core/v1, strictly."""
    import jsonschema
    import kubernetes_validate
    from kubernetes_validate.utils import ValidationError

    validator = jsonschema.Draft7Validator(crd_schema(str(crd_file), version))
    problems = [
        f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(obj)
    ]
    name = obj.get("metadata", {}).get("name", "?")
    for role, template in (pod_templates or {}).items():
        wrapped = {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": f"{name}-{role.lower()}"},
            "template": template,
        }
        try:
            kubernetes_validate.validate(wrapped, kubernetes_version, strict=True)
        except ValidationError as err:
            where = ".".join(str(part) for part in err.absolute_path)
            problems.append(f"{role} pod {where}: {err.message} (core/v1, Kubernetes {kubernetes_version})")
    if problems:
        raise CustomObjectSchemaError(f"{obj.get('kind', '?')} {name} is invalid: " + "; ".join(problems))


def validate_pytorchjob(
    job: dict[str, Any], kubernetes_version: str = KUBERNETES_VERSION, crd_file: str | Path = CRD_FILE
) -> None:
    """A kubeflow.org/v1 PyTorchJob and each replica's pod template."""
    templates = {
        role: replica.get("template", {})
        for role, replica in (job.get("spec", {}).get("pytorchReplicaSpecs") or {}).items()
    }
    validate_custom_object(job, crd_file, "v1", templates, kubernetes_version)


def validate_trainjob(job: dict[str, Any], kubernetes_version: str = KUBERNETES_VERSION) -> None:
    """A trainer.kubeflow.org/v1alpha1 TrainJob (it embeds no pod template: the runtime holds it)."""
    validate_custom_object(job, TRAINJOB_CRD, "v1alpha1", None, kubernetes_version)


def runtime_pod_templates(runtime: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(replicated job name, pod template) of a ClusterTrainingRuntime."""
    for replicated in runtime.get("spec", {}).get("template", {}).get("spec", {}).get("replicatedJobs") or []:
        yield replicated["name"], replicated.get("template", {}).get("spec", {}).get("template", {})


def validate_cluster_training_runtime(
    runtime: dict[str, Any], kubernetes_version: str = KUBERNETES_VERSION
) -> None:
    """A trainer.kubeflow.org/v1alpha1 ClusterTrainingRuntime and each replicated job's pod template."""
    templates = dict(runtime_pod_templates(runtime))
    validate_custom_object(runtime, RUNTIME_CRD, "v1alpha1", templates, kubernetes_version)
