"""The Kangaroo video-language model in Hugging Face conventions.

`from kangaroo.model import <any public name>` registers the classes with the Auto factories, so that
`AutoConfig`, `AutoModelForCausalLM` and `AutoProcessor.from_pretrained(path)` load our checkpoints without
`trust_remote_code` (and `AutoModel` builds the EVA02-CLIP vision tower from an `eva_vision` config);
`register_auto_classes()` does it explicitly. The package itself imports lazily: reading params.yaml
(`kangaroo.model.settings`) or running the CLI must not pay for torch and transformers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ModelBuildError": "kangaroo.model.build",
    "build_model_and_processor": "kangaroo.model.build",
    "load_model_and_processor": "kangaroo.model.build",
    "save_model_and_processor": "kangaroo.model.build",
    "KangarooConfig": "kangaroo.model.configuration_kangaroo",
    "EvaVisionConfig": "kangaroo.model.eva_vision",
    "EvaVisionModel": "kangaroo.model.eva_vision",
    "KangarooForConditionalGeneration": "kangaroo.model.modeling_kangaroo",
    "KangarooPreTrainedModel": "kangaroo.model.modeling_kangaroo",
    "KangarooProcessor": "kangaroo.model.processing_kangaroo",
    "ProcessorInputError": "kangaroo.model.processing_kangaroo",
}

__all__ = [
    "EvaVisionConfig",
    "EvaVisionModel",
    "KangarooConfig",
    "KangarooForConditionalGeneration",
    "KangarooPreTrainedModel",
    "KangarooProcessor",
    "ModelBuildError",
    "ProcessorInputError",
    "build_model_and_processor",
    "load_model_and_processor",
    "register_auto_classes",
    "save_model_and_processor",
]

if TYPE_CHECKING:
    from kangaroo.model.build import (
        ModelBuildError,
        build_model_and_processor,
        load_model_and_processor,
        save_model_and_processor,
    )
    from kangaroo.model.configuration_kangaroo import KangarooConfig
    from kangaroo.model.eva_vision import EvaVisionConfig, EvaVisionModel
    from kangaroo.model.modeling_kangaroo import KangarooForConditionalGeneration, KangarooPreTrainedModel
    from kangaroo.model.processing_kangaroo import KangarooProcessor, ProcessorInputError


def register_auto_classes() -> None:
    """Make the Auto factories know `kangaroo` and `eva_vision` checkpoints (idempotent)."""
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForImageTextToText,
        AutoProcessor,
    )

    from kangaroo.model.configuration_kangaroo import KangarooConfig
    from kangaroo.model.eva_vision import register_eva_vision
    from kangaroo.model.modeling_kangaroo import KangarooForConditionalGeneration
    from kangaroo.model.processing_kangaroo import KangarooProcessor

    register_eva_vision()
    AutoConfig.register(KangarooConfig.model_type, KangarooConfig, exist_ok=True)
    AutoModelForCausalLM.register(KangarooConfig, KangarooForConditionalGeneration, exist_ok=True)
    AutoModelForImageTextToText.register(KangarooConfig, KangarooForConditionalGeneration, exist_ok=True)
    AutoProcessor.register(KangarooConfig, KangarooProcessor, exist_ok=True)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'kangaroo.model' has no attribute {name!r}")
    register_auto_classes()
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
