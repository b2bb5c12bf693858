"""Offline validation of a generated PyTorchJob: the training operator's CRD OpenAPI v3 schema
(manifests/crds/, vendored) with the API server's strict field validation, plus the official core/v1
schema of the target Kubernetes version for each replica's pod template (kubernetes-validate).
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from kangaroo.k8s.errors import PyTorchJobError

CRD_FILE = Path(__file__).resolve().parents[2] / "manifests" / "crds" / "kubeflow.org_pytorchjobs.yaml"


class PyTorchJobSchemaError(PyTorchJobError):
    """The PyTorchJob does not match the CRD schema or its pod template the core/v1 schema."""


@lru_cache(maxsize=4)
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


def validate_pytorchjob(
    job: dict[str, Any], kubernetes_version: str = "1.31.0", crd_file: str | Path = CRD_FILE
) -> None:
    """Raise PyTorchJobSchemaError listing every violation (CRD schema, then each pod template)."""
    import jsonschema
    import kubernetes_validate
    from kubernetes_validate.utils import ValidationError

    validator = jsonschema.Draft7Validator(crd_schema(str(crd_file)))
    problems = [
        f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(job)
    ]
    for role, replica in (job.get("spec", {}).get("pytorchReplicaSpecs") or {}).items():
        wrapped = {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": f"{job['metadata']['name']}-{role.lower()}"},
            "template": replica.get("template", {}),
        }
        try:
            kubernetes_validate.validate(wrapped, kubernetes_version, strict=True)
        except ValidationError as err:
            where = ".".join(str(part) for part in err.absolute_path)
            problems.append(f"{role} pod {where}: {err.message} (core/v1, Kubernetes {kubernetes_version})")
    if problems:
        name = job.get("metadata", {}).get("name", "?")
        raise PyTorchJobSchemaError(f"PyTorchJob {name} is invalid: " + "; ".join(problems))
