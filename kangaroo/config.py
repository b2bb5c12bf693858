"""The one config: `params.yaml`, read by the CLI, the KFP components and `dvc repro` alike.

Layout of the file::

    profile: tiny            # the active profile
    synth: {...}             # shared values, one block per library package
    ...
    profiles:
      tiny:  {...}           # overrides deep-merged over the shared values
      paper: {...}

`load_params()` resolves the active profile, applies `--set key.path=value` overrides and validates the
result; errors name the offending key and the file. Settings that could send a secret somewhere are held to
the `security:` allow-lists and the deployed params.yaml (kangaroo.config_policy).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from kangaroo.config_policy import (
    SecuritySettings,
    deployment_mismatch,
    policy_violations,
    refuse_deployment_override,
)
from kangaroo.curation.settings import CaptionSettings, CurationSettings
from kangaroo.errors import KangarooError
from kangaroo.eval.settings import EvalSettings
from kangaroo.k8s.settings import ClusterSettings
from kangaroo.model.settings import ModelSettings
from kangaroo.quality.settings import QualitySettings
from kangaroo.settings_base import Section
from kangaroo.storage.settings import StorageSettings
from kangaroo.synth.settings import SynthSettings
from kangaroo.train.settings import TrainSettings
from kangaroo.video.settings import VideoSettings

PARAMS_ENV = "KANGAROO_PARAMS"
DEFAULT_PARAMS_FILE = "params.yaml"
# The params.yaml shipped next to the code: the repo root here, /app in the image (Dockerfile).
PACKAGED_PARAMS = Path(__file__).resolve().parents[1] / DEFAULT_PARAMS_FILE


class ConfigError(KangarooError):
    """params.yaml is missing, unparsable, or has a bad value; the message names the file and the key."""


class Params(Section):
    profile: str
    synth: SynthSettings
    video: VideoSettings
    curation: CurationSettings
    caption: CaptionSettings
    quality: QualitySettings
    model: ModelSettings
    train: TrainSettings
    eval: EvalSettings
    storage: StorageSettings
    cluster: ClusterSettings
    security: SecuritySettings = SecuritySettings()


def default_params_path() -> Path:
    """`$KANGAROO_PARAMS` (set in the container image and by the ConfigMap mount), else ./params.yaml."""
    return Path(os.environ.get(PARAMS_ENV, DEFAULT_PARAMS_FILE))


def deployed_params_path() -> Path:
    """The params.yaml a run's own params text is checked against: the one packaged with the code (the image's
    /app/params.yaml), else `$KANGAROO_PARAMS`. Neither can be changed by a run parameter."""
    return (
        PACKAGED_PARAMS
        if PACKAGED_PARAMS.is_file()
        else Path(os.environ.get(PARAMS_ENV, DEFAULT_PARAMS_FILE))
    )


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def apply_override(tree: dict[str, Any], assignment: str) -> None:
    """Apply one `a.b.c=value` override in place; the value is parsed as YAML (numbers, lists, bools)."""
    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r} is not of the form key.path=value")
    dotted, raw = assignment.split("=", 1)
    dotted = dotted.strip()
    refusal = refuse_deployment_override(dotted, assignment)
    if refusal:
        raise ConfigError(refusal)
    keys = dotted.split(".")
    node = tree
    for i, key in enumerate(keys[:-1]):
        if not isinstance(node.get(key), dict):
            raise ConfigError(f"override {assignment!r}: {'.'.join(keys[: i + 1])} is not a block of params")
        node = node[key]
    if keys[-1] not in node:
        raise ConfigError(f"override {assignment!r}: unknown key {dotted!r}")
    node[keys[-1]] = yaml.safe_load(raw)


def read_params_tree(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"params file not found: {path} (set ${PARAMS_ENV} or run from the project root)")
    try:
        tree = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return tree


def resolve_profile(tree: dict[str, Any], profile: str | None, source: str) -> dict[str, Any]:
    profiles = tree.get("profiles") or {}
    name = profile or tree.get("profile")
    if name not in profiles:
        raise ConfigError(f"{source}: unknown profile {name!r}; defined profiles: {sorted(profiles)}")
    shared = {k: v for k, v in tree.items() if k != "profiles"}
    resolved = deep_merge(shared, profiles[name] or {})
    resolved["profile"] = name
    return resolved


def load_params(
    path: str | Path | None = None, profile: str | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> Params:
    """Read, resolve and validate params.yaml. Raises ConfigError naming the file and the bad key."""
    path = Path(path) if path else default_params_path()
    return validate_params_tree(read_params_tree(path), str(path), profile, overrides)


def load_params_text(
    text: str, profile: str | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> Params:
    """Validate params given as YAML text: the KFP pipeline passes the file's content as a run parameter, so
    the config a run used is recorded in the run and is part of every step's cache key. Because a run sets
    it, its deployment-fixed settings (`security:`, images, Secrets) must equal the deployed params.yaml's."""
    try:
        # JSON first: PyYAML (YAML 1.1) reads JSON's `2e-05` as a string.
        tree = json.loads(text)
    except json.JSONDecodeError:
        try:
            tree = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"params text: not valid YAML: {err}") from err
    if not isinstance(tree, dict):
        raise ConfigError("params text: expected a mapping at the top level")
    params = validate_params_tree(tree, "params text", profile, overrides)
    deployed_path = deployed_params_path()
    deployed_tree = read_params_tree(deployed_path)
    known = params.profile in (deployed_tree.get("profiles") or {})
    deployed = (
        resolve_profile(deployed_tree, params.profile, str(deployed_path))
        if known
        else {k: v for k, v in deployed_tree.items() if k != "profiles"}
    )
    deployed = Params.model_validate({**deployed, "profile": params.profile}).model_dump(mode="json")
    differing = deployment_mismatch(params.model_dump(mode="json"), deployed)
    if differing:
        raise ConfigError(
            f"params text (profile {params.profile!r}): {differing} differs from the deployed "
            f"{deployed_path}; it is fixed at deployment and cannot be changed by a run"
        )
    return params


def validate_params_tree(
    tree: dict[str, Any], source: str, profile: str | None, overrides: list[str] | tuple[str, ...]
) -> Params:
    resolved = resolve_profile(tree, profile, source)
    for assignment in overrides:
        apply_override(resolved, assignment)
    try:
        params = Params.model_validate(resolved)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors(include_url=False)
        )
        raise ConfigError(f"{source} (profile {resolved['profile']!r}): {problems}") from err
    violations = policy_violations(params)
    if violations:
        raise ConfigError(f"{source} (profile {resolved['profile']!r}): {'; '.join(violations)}")
    return params


def write_resolved_params(params: Params, path: str | Path) -> Path:
    """`params` (profile and overrides applied) as a params.yaml that loads back to the same Params: what a
    child process (torchrun ranks, PyTorchJob replicas) reads so it runs exactly the caller's config."""
    tree = params.model_dump(mode="json")
    path = Path(path)
    path.write_text(yaml.safe_dump({**tree, "profiles": {tree["profile"]: {}}}, sort_keys=False))
    return path
