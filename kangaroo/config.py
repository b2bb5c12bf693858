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
from pydantic import PrivateAttr, ValidationError

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
    """Every block, resolved for one profile. Defaults are the typed settings'; only the curriculum's sizes
    (train.stages) have none and must come from the profile."""

    profile: str
    _step_document: dict[str, Any] | None = PrivateAttr(None)  # set when loaded from a step's resolved config
    synth: SynthSettings = SynthSettings()
    video: VideoSettings = VideoSettings()
    curation: CurationSettings = CurationSettings()
    caption: CaptionSettings = CaptionSettings()
    quality: QualitySettings = QualitySettings()
    model: ModelSettings = ModelSettings()
    train: TrainSettings
    eval: EvalSettings = EvalSettings()
    storage: StorageSettings = StorageSettings()
    cluster: ClusterSettings = ClusterSettings()
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
    tree = parse_params_text(path.read_text(), str(path))
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return tree


def parse_params_text(text: str, source: str) -> Any:
    try:
        # JSON first: PyYAML (YAML 1.1) reads JSON's `2e-05` as a string.
        return json.loads(text)
    except json.JSONDecodeError:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"{source}: not valid YAML: {err}") from err


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
    """Validate params given as text (a whole params file, or one step's resolved config): what a KFP task
    receives as an input, so the config a run used is recorded in the run and is part of the cache key.
    Because a run sets it, it is held to the deployed params.yaml: its deployment-fixed settings (`security:`,
    images, Secrets) must equal the deployed ones, and a step's config meets the deployed allow-lists."""
    tree = parse_params_text(text, "params text")
    if not isinstance(tree, dict):
        raise ConfigError("params text: expected a mapping at the top level")
    params = validate_params_tree(tree, "params text", profile, overrides)
    deployed = deployed_params(params.profile)
    if params._step_document is not None:  # holds no `security:` block: the deployed one applies
        violations = policy_violations(params, deployed.security)
        if violations:
            raise ConfigError(f"params text (step config): {'; '.join(violations)}")
        return params
    differing = deployment_mismatch(params.model_dump(mode="json"), deployed.model_dump(mode="json"))
    if differing:
        raise ConfigError(
            f"params text (profile {params.profile!r}): {differing} differs from the deployed "
            f"{deployed_params_path()}; it is fixed at deployment and cannot be changed by a run"
        )
    return params


def deployed_params(profile: str) -> Params:
    """The deployed params.yaml resolved for PROFILE (its shared blocks when it has no such profile)."""
    path = deployed_params_path()
    tree = read_params_tree(path)
    if profile in (tree.get("profiles") or {}):
        resolved = resolve_profile(tree, profile, str(path))
    else:
        resolved = {key: value for key, value in tree.items() if key != "profiles"}
    return _validate({**resolved, "profile": profile}, str(path))


def validate_params_tree(
    tree: dict[str, Any], source: str, profile: str | None, overrides: list[str] | tuple[str, ...]
) -> Params:
    from kangaroo.step_config import is_step_document, load_step_document

    if is_step_document(tree):
        return load_step_document(tree, source, profile, overrides)
    resolved = resolve_profile(tree, profile, source)
    params = _validate(resolved, source)
    if not overrides:
        return params
    # Overrides address any setting, also one the file leaves at its default: apply them to the full tree.
    full = params.model_dump(mode="json")
    for assignment in overrides:
        apply_override(full, assignment)
    return _validate(full, source)


def _validate(resolved: dict[str, Any], source: str) -> Params:
    try:
        params = Params.model_validate(resolved)
    except ValidationError as err:
        raise ConfigError(f"{source} (profile {resolved['profile']!r}): {validation_problems(err)}") from err
    violations = policy_violations(params)
    if violations:
        raise ConfigError(f"{source} (profile {resolved['profile']!r}): {'; '.join(violations)}")
    return params


def validation_problems(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors(include_url=False)
    )


def write_resolved_params(params: Params, path: str | Path) -> Path:
    """`params` (profile and overrides applied) as a params file that loads back to the same Params: what a
    child process (torchrun ranks, PyTorchJob replicas) reads so it runs exactly the caller's config. Params
    from a step's resolved config are written as that config (still only the step's settings)."""
    from kangaroo.step_config import step_document, step_json

    path = Path(path)
    document = step_document(params)
    if document is not None:
        path.write_text(step_json(document))
        return path
    tree = params.model_dump(mode="json")
    path.write_text(yaml.safe_dump({**tree, "profiles": {tree["profile"]: {}}}, sort_keys=False))
    return path
