"""Per-step config: the settings one step reads, resolved for a profile and overrides, plus the code version.

`kangaroo resolve-config` writes one document per step (the first DVC stage does; the KFP pipeline's uncached
first task emits the same JSON as strings)::

    {"kangaroo_step": "evaluate", "profile": "tiny", "code_version": {...}, "settings": {"eval": {...}, ...}}

A step run from it (`kangaroo evaluate --params evaluate.json ...`) sees exactly these values, and reading a
setting outside its list raises `StepScopeError` instead of falling back to a default, so `STEP_SETTINGS`
stays true. Its cache key (a DVC dependency, a KFP input) then changes exactly when its own settings or the
code change: editing `eval.batch_size` changes only the evaluate document.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from kangaroo.config import ConfigError, Params, apply_override, validation_problems
from kangaroo.settings_base import Section
from kangaroo.train.settings import STAGE_NAMES

STEP_KEY = "kangaroo_step"
# Set in the cluster image (its digest, e.g. by the build): part of every step's code version there.
IMAGE_DIGEST_ENV = "KANGAROO_IMAGE_DIGEST"
# Set by `make compile` (pipelines/compile.py) for components/image.py, and in every task's env: the image
# reference (digest or commit tag) the compiled pipeline runs, which a TrainJob launcher submits too.
IMAGE_ENV = "KANGAROO_IMAGE"
COMPILE_PROFILE_ENV = "KANGAROO_COMPILE_PROFILE"  # the profile a pipeline is compiled for
_RUN_SETTINGS = ("train.seed", "train.log_every", "train.deterministic", "train.torch_threads")
# which checkpoint runs on the shared volume a stage prunes (launch.run_stage with a checkpoint root)
_CHECKPOINT_SETTINGS = ("train.checkpoint_keep_runs", "train.checkpoint_prune_after_h")

# Dotted settings each step reads (a block, or one value of it). Keep in step with the code: a step that
# reads anything else fails when run from its resolved document (tests/test_step_config.py, the DVC DAG test).
STEP_SETTINGS: dict[str, tuple[str, ...]] = {
    "synth": ("synth",),
    "curate": ("curation", "video", "storage"),
    "caption": ("caption", "video", "storage"),
    "alignment_model": (
        "caption.alignment",
        "train.torch_threads",
        "model.tiny_vocab_size",
        "model.image_mean",
        "model.image_std",
        "storage",
    ),
    "validate": ("quality", "caption.num_key_frames", "video", "storage"),  # video, storage: frame strips
    "version_dataset": ("storage",),
    # model: only the tokenizer that counts text tokens; video: probing limits (max_image_pixels, ...)
    "pack": ("model.tokenizer", "model.llm_model", "model.tiny_vocab_size", "video", "train.data", "storage"),
    "pretrain_vision": (
        "model",
        "video.resize_policy",
        "train.seed",
        "train.torch_threads",
        "train.vision_pretrain",
    ),
    **{
        f"train_{stage}": (
            "model",
            "video",
            "storage",
            *_RUN_SETTINGS,
            *_CHECKPOINT_SETTINGS,
            "train.data",
            f"train.stages.{stage}",
        )
        for stage in STAGE_NAMES
    },
    "evaluate": ("eval", "video", "storage"),  # storage: s3:// benchmark prefixes
    # where the curriculum's stages run (pod, TrainJob, skipped) and what a TrainJob launcher submits
    "placement": ("cluster",),
}

# The steps the KFP pipeline's tasks run from (the sample corpus's `synth` runs outside it): the outputs of
# its uncached first task, components.step_config.resolve_step_configs.
PIPELINE_STEPS: tuple[str, ...] = tuple(step for step in STEP_SETTINGS if step != "synth")


class StepScopeError(ConfigError):
    """A step read a setting that is not in its resolved document (missing from STEP_SETTINGS)."""


@cache
def source_digest() -> str:
    """sha256 over the library's files (paths and bytes): changes exactly when the code a step runs changes,
    also for uncommitted edits, and is the same in a checkout and in the image built from it."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    files = (
        p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )
    for path in sorted(files):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return f"sha256:{digest.hexdigest()}"


def code_version() -> dict[str, str]:
    """Package version and library source digest, plus the image digest when the image declares one."""
    try:
        package = importlib.metadata.version("kangaroo-flow")
    except importlib.metadata.PackageNotFoundError:
        from kangaroo import __version__ as package
    version = {"package": package, "source": source_digest()}
    if os.environ.get(IMAGE_DIGEST_ENV):
        version["image"] = os.environ[IMAGE_DIGEST_ENV]
    return version


def selection(paths: tuple[str, ...]) -> dict[str, Any]:
    """("train.seed", "train.stages.x") -> {"train": {"seed": True, "stages": {"x": True}}}."""
    tree: dict[str, Any] = {}
    for dotted in paths:
        *parents, leaf = dotted.split(".")
        node = tree
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = True
    return tree


def _pick(tree: dict[str, Any], chosen: dict[str, Any]) -> dict[str, Any]:
    return {key: tree[key] if sub is True else _pick(tree[key], sub) for key, sub in chosen.items()}


def resolve_step(params: Params, step: str) -> dict[str, Any]:
    """The document `step` runs from: only its settings of the resolved `params`, and the code version."""
    if step not in STEP_SETTINGS:
        raise ConfigError(f"unknown step {step!r}; steps are {', '.join(STEP_SETTINGS)}")
    settings = _pick(params.model_dump(mode="json"), selection(STEP_SETTINGS[step]))
    return {STEP_KEY: step, "profile": params.profile, "code_version": code_version(), "settings": settings}


def step_json(document: dict[str, Any]) -> str:
    """Canonical text of a step document (sorted keys): equal settings give byte-equal files and inputs."""
    return json.dumps(document, sort_keys=True, indent=1) + "\n"


def step_jsons(params: Params, steps: list[str] | None = None) -> dict[str, str]:
    """Each step's document as canonical JSON text: what an uncached KFP task hands each step as an input."""
    return {step: step_json(resolve_step(params, step)) for step in steps or list(STEP_SETTINGS)}


def write_step_configs(params: Params, out_dir: str | Path, steps: list[str] | None = None) -> list[Path]:
    """One `<step>.json` per step in `out_dir`; a file whose content is unchanged is not rewritten."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for step, text in step_jsons(params, steps).items():
        path = out_dir / f"{step}.json"
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    return written


def is_step_document(tree: dict[str, Any]) -> bool:
    return STEP_KEY in tree


def load_step_document(
    document: dict[str, Any],
    source: str,
    profile: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> Params:
    """Params holding only the document's settings; any other setting raises StepScopeError when read."""
    step = document.get(STEP_KEY)
    if step not in STEP_SETTINGS or not isinstance(document.get("settings"), dict):
        raise ConfigError(f"{source}: not a step config (unknown step {step!r} or no settings)")
    if profile and profile != document.get("profile"):
        raise ConfigError(f"{source}: resolved for profile {document.get('profile')!r}, not {profile!r}")
    settings = json.loads(json.dumps(document["settings"]))  # a private copy for the overrides
    for assignment in overrides:
        apply_override(settings, assignment)
    chosen = selection(STEP_SETTINGS[step])
    if set(settings) != set(chosen):
        raise ConfigError(f"{source}: step {step!r} reads {sorted(chosen)}, the file has {sorted(settings)}")
    scope = f"step {step!r} ({source})"
    params = _partial(
        Params, {**settings, "profile": document.get("profile")}, {**chosen, "profile": True}, scope
    )
    params._step_document = {**document, "settings": settings}
    return params


def _partial(
    model: type[Section], data: dict[str, Any], chosen: dict[str, Any], scope: str, where: str = ""
) -> Any:
    values = {}
    for name, sub in chosen.items():
        field = model.model_fields[name]
        path = f"{where}{name}"
        if not isinstance(data, dict) or name not in data:
            raise ConfigError(f"{scope}: {path} is missing")
        if sub is not True:
            values[name] = _partial(field.annotation, data[name], sub, scope, f"{path}.")
            continue
        try:
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                values[name] = field.annotation.model_validate(data[name])
            else:
                annotation = (
                    Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
                )
                values[name] = TypeAdapter(annotation).validate_python(data[name])
        except ValidationError as err:
            raise ConfigError(f"{scope}: {path}: {validation_problems(err)}") from err
    instance = model.model_construct(**values)
    for name in model.model_fields:
        if name not in values:
            instance.__dict__.pop(
                name, None
            )  # model_construct filled a default: absent instead, so it raises
    instance._partial_scope = f"{scope} [{where.rstrip('.') or 'top level'}]"
    return instance


def step_document(params: Params) -> dict[str, Any] | None:
    """The step document `params` was loaded from, or None for params resolved from a whole params file."""
    return params._step_document


def code_version_of(params: Params) -> dict[str, str]:
    """The code version recorded in `params`' step document, else this process's own."""
    document = step_document(params)
    return document["code_version"] if document else code_version()
