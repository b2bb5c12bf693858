"""The `model:` block of params.yaml."""

from typing import Literal

from pydantic import Field

from kangaroo.settings_base import Section


class VisionSettings(Section):
    """Vision encoder shape, used when no pretrained `vision_model` is given (and on the meta device)."""

    model_type: str = "siglip_vision_model"  # any transformers vision config, or `eva_vision` (EVA02-CLIP)
    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    intermediate_size: int = 128
    patch_size: int = 16
    image_size: int = 64


class LLMSettings(Section):
    """Causal LM shape (Llama), used when no pretrained `llm_model` is given (and on the meta device)."""

    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    num_key_value_heads: int = 1
    intermediate_size: int = 128
    vocab_size: int = 2048
    rope_theta: float = 500000.0
    max_position_embeddings: int = 8192
    # fresh-init weights: "llama" = the LLM's own initializer_range (0.02); "fan_in" = std 1/sqrt(fan-in) per
    # Linear, the scale a narrow (tiny) LLM needs (kangaroo.model.build._init_fresh_llm)
    weight_init: Literal["llama", "fan_in"] = "llama"


class RopeScalingSettings(Section):
    """RoPE extension of the LLM beyond its native positions (long-video tuning: ~22K on an 8K Llama-3)."""

    rope_type: Literal["default", "linear", "dynamic", "yarn"] = "default"
    factor: float = Field(1.0, ge=1.0)


class ModelSettings(Section):
    vision_model: str = ""  # hub id or local path of pretrained vision weights; "" = fresh init
    llm_model: str = ""  # hub id or local path of the pretrained LLM; "" = fresh init
    tokenizer: str = ""  # "" = the LLM's tokenizer, or the built-in tiny BPE when there is no LLM path
    vision: VisionSettings = VisionSettings()
    llm: LLMSettings = LLMSettings()
    rope_scaling: RopeScalingSettings = RopeScalingSettings()
    tiny_vocab_size: int = 2048
    image_size: int = 64  # processor default square frame size (stages may override per call)
    vision_feature_layer: int = -1
    vision_frames_per_chunk: int = 0
    visual_feature_standardization: Literal["none", "per_video"] = "none"
    temporal_embed_dim: int = 64
    temporal_min_period_s: float = 0.5
    temporal_max_period_s: float = 10000.0
    patchify_temporal: int = 2
    patchify_spatial: int = 2
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2", "flex_attention"] = "sdpa"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    seed: int = 0
