"""The `model:` block of params.yaml."""

from typing import Literal

from pydantic import Field

from kangaroo.settings_base import Section


class VisionSettings(Section):
    """Vision encoder shape, used when no pretrained `vision_model` is given (and on the meta device).
    Defaults: the tiny 2-layer SigLIP-style ViT that trains on 2 CPU cores."""

    # any transformers vision config, or `eva_vision` (EVA02-CLIP); SigLIP has no CLS token and interpolates
    # position embeddings for other sizes
    model_type: str = "siglip_vision_model"
    hidden_size: int = 96
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 192
    patch_size: int = 16  # 64 px -> 4x4 patches = 16 tokens per frame pair (patchify_spatial 1)
    image_size: int = 64


class LLMSettings(Section):
    """Causal LM shape (Llama), used when no pretrained `llm_model` is given (and on the meta device).
    Defaults: the tiny 2-layer Llama that trains on 2 CPU cores."""

    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2  # grouped-query attention like Llama-3 (8 KV heads of 32)
    intermediate_size: int = 256
    vocab_size: int = 2048  # = the tiny tokenizer's 2048 tokens
    rope_theta: float = 500000.0  # Llama-3's base
    max_position_embeddings: int = 8192
    # fresh-init weights: "llama" = the LLM's own initializer_range (0.02); "fan_in" = std 1/sqrt(fan-in) per
    # Linear, the scale a narrow (tiny) LLM needs (kangaroo.model.build._init_fresh_llm; docs/model.md)
    weight_init: Literal["llama", "fan_in"] = "fan_in"


class RopeScalingSettings(Section):
    """RoPE extension of the LLM beyond its native positions (long-video tuning: ~22K on an 8K Llama-3)."""

    rope_type: Literal["default", "linear", "dynamic", "yarn"] = "default"
    factor: float = Field(1.0, ge=1.0)


class ModelSettings(Section):
    vision_model: str = ""  # hub id or local path of pretrained vision weights; "" = fresh init of `vision`
    llm_model: str = ""  # hub id or local path of the pretrained LLM; "" = fresh init
    tokenizer: str = ""  # "" = the LLM's tokenizer, or the built-in tiny BPE when there is no LLM path
    vision: VisionSettings = VisionSettings()
    llm: LLMSettings = LLMSettings()
    rope_scaling: RopeScalingSettings = RopeScalingSettings()
    tiny_vocab_size: int = (
        2048  # fixed word list + byte fallback: the synthetic corpus averages 1.2 tokens/word
    )
    image_size: int = 64  # processor default square frame size (stages may override per call)
    vision_feature_layer: int = (
        -1
    )  # last encoder layer; the paper does not say which layer feeds the connector
    vision_frames_per_chunk: int = 0  # 0 = all frames in one vision forward; e.g. 32 caps activation memory
    # per_video: standardise each video's patch features per channel before patchify. A tiny ViT trained from
    # scratch collapses onto one shared vector the LLM learns to ignore; a pretrained tower needs none.
    visual_feature_standardization: Literal["none", "per_video"] = "per_video"
    temporal_embed_dim: int = 64  # sinusoid features per timestamp
    temporal_min_period_s: float = 0.5  # shortest period: resolves frames sampled at up to ~4 fps
    temporal_max_period_s: float = 10000.0  # longest period: hour-long videos stay unambiguous
    patchify_temporal: int = 2  # paper: 2 frames x 2 x 2 patches -> 128 tokens per 448 px frame
    # 1 = no spatial merge (tiny): a 2 x 2 merge gives each sub-patch position its own weights, so a tiny one
    # codes a colour differently by where in the cell a shape sits (docs/params-history.md#model).
    patchify_spatial: int = 1
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)  # SigLIP normalisation
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    # flash_attention_2 needs the flash-attn package and a GPU (paper profile); packed rows then use
    # position_ids as varlen bounds. sdpa_packed does the same with PyTorch SDPA
    # (kangaroo.model.packed_attention); sdpa would score every pair of a row's tokens and mask most away.
    attn_implementation: Literal["sdpa_packed", "sdpa", "eager", "flash_attention_2", "flex_attention"] = (
        "sdpa_packed"
    )
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    seed: int = 0  # fresh-init seed: same tiny weights on every run
