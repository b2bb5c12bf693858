"""The Kangaroo video-language model in Hugging Face conventions.

Importing this package registers the classes with the Auto factories, so `AutoConfig`,
`AutoModelForCausalLM` and `AutoProcessor.from_pretrained(path)` load our checkpoints without
`trust_remote_code` (and `AutoModel` builds the EVA02-CLIP vision tower from an `eva_vision` config).
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoProcessor,
)

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

AutoConfig.register(EvaVisionConfig.model_type, EvaVisionConfig, exist_ok=True)
AutoModel.register(EvaVisionConfig, EvaVisionModel, exist_ok=True)
AutoConfig.register(KangarooConfig.model_type, KangarooConfig, exist_ok=True)
AutoModelForCausalLM.register(KangarooConfig, KangarooForConditionalGeneration, exist_ok=True)
AutoModelForImageTextToText.register(KangarooConfig, KangarooForConditionalGeneration, exist_ok=True)
AutoProcessor.register(KangarooConfig, KangarooProcessor, exist_ok=True)

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
    "save_model_and_processor",
]
