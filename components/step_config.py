"""The pipeline's uncached first task: params.yaml text + profile + overrides -> one resolved config per step
(kangaroo.step_config), each task's only config input. A task's cache key then follows its own settings and
the code version recorded by this task (it runs in the project image), never the whole params file."""

from typing import NamedTuple

from components.image import project_component


@project_component
def resolve_step_configs(
    params_yaml: str,
    profile: str,
    overrides: list[str],
) -> NamedTuple(
    "StepConfigs",
    # kangaroo.step_config.PIPELINE_STEPS, in its order (tests/test_pipeline_ir.py checks)
    [
        ("curate", str),
        ("caption", str),
        ("alignment_model", str),
        ("validate", str),
        ("version_dataset", str),
        ("pack", str),
        ("pretrain_vision", str),
        ("train_image_text_pretrain", str),
        ("train_video_text_pretrain", str),
        ("train_pretrain_refinement", str),
        ("train_instruction_tuning", str),
        ("train_long_video_tuning", str),
        ("evaluate", str),
        ("placement", str),
    ],
):
    """Each pipeline step's settings for PROFILE with OVERRIDES, plus the code version, as canonical JSON."""
    from collections import namedtuple

    from kangaroo.config import load_params_text
    from kangaroo.step_config import PIPELINE_STEPS, step_jsons

    documents = step_jsons(load_params_text(params_yaml, profile, overrides), list(PIPELINE_STEPS))
    return namedtuple("StepConfigs", list(documents))(**documents)
