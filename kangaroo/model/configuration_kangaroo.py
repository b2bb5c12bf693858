"""KangarooConfig: every hyper-parameter of the Kangaroo video-language model and nothing else.

A composite config in the transformers-5 style (like `LlavaConfig`): `vision_config` is any vision encoder
config transformers knows (SigLIP/CLIP for the tiny profile; `eva_vision` for EVA02-CLIP-L, registered
when this module imports `kangaroo.model.eva_vision`), `text_config` any causal-LM config (Llama for both
profiles).
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

import kangaroo.model.eva_vision  # noqa: F401  (registers `eva_vision` with AutoConfig/AutoModel)

STANDARDIZATION_MODES = ("none", "per_video")


@strict
class KangarooConfig(PreTrainedConfig):
    r"""
    Args:
        vision_config: vision encoder config (dict with `model_type`, or a config object).
        text_config: causal LM config.
        vision_feature_layer: -1 = the encoder's final output (with its final LayerNorm); otherwise the index
            into `hidden_states` (pre-norm, LLaVA uses -2; the final norm then sits unused).
        vision_frames_per_chunk: frames per vision-encoder forward (0 = all at once); bounds activation memory
            for long videos without changing results.
        visual_feature_standardization: "none", or "per_video": each video's patch features (timestamp
            embedding added) are standardised per channel over all of its tokens before patchify. Meant for a
            vision tower trained from scratch, whose features share one large constant component that drowns
            what differs between videos (a pretrained tower does not need it).
        temporal_embed_dim: number of sinusoidal features computed from each frame's timestamp.
        temporal_min_period_s / temporal_max_period_s: shortest / longest sinusoid period in seconds; the
            geometric range covers sub-second frame spacing up to hour-long videos.
        patchify_temporal / patchify_spatial: merge factors (paper: 2 frames x 2 x 2 patches).
        patchify_hidden_size: width of the merged token (default: the vision width).
        projector_hidden_act: activation of the 2-layer MLP projector.
        video_token_id: placeholder token, one per visual token, replaced by projected visual features.
        vi_start_token_id / vi_end_token_id / eof_token_id / eov_token_id: the layout markers
            `<vi_start> group <eof> group <eof> ... group <eov> <vi_end>`.
    """

    model_type = "kangaroo"
    sub_configs_defaults = {
        "vision_config": SubConfigSpec(config_class=AutoConfig, model_type="siglip_vision_model"),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama"),
    }

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    vision_feature_layer: int = -1
    vision_frames_per_chunk: int = 0
    visual_feature_standardization: str = "none"
    temporal_embed_dim: int = 256
    temporal_min_period_s: float = 0.5
    temporal_max_period_s: float = 10000.0
    patchify_temporal: int = 2
    patchify_spatial: int = 2
    patchify_hidden_size: int | None = None
    projector_hidden_act: str = "gelu"
    video_token_id: int = 0
    vi_start_token_id: int = 0
    vi_end_token_id: int = 0
    eof_token_id: int = 0
    eov_token_id: int = 0
    initializer_range: float = 0.02
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.visual_feature_standardization not in STANDARDIZATION_MODES:
            raise ValueError(
                f"visual_feature_standardization={self.visual_feature_standardization!r}: "
                f"expected one of {STANDARDIZATION_MODES}"
            )
        if self.patchify_hidden_size is None:
            self.patchify_hidden_size = self.vision_config.hidden_size

    @property
    def vision_patch_size(self) -> int:
        return int(self.vision_config.patch_size)

    def num_visual_tokens(self, num_frames: int, height: int, width: int) -> int:
        """Visual tokens one video of `num_frames` frames at `height` x `width` pixels occupies in the LLM.

        ceil(T / kt) * ceil((H / patch) / ks) * ceil((W / patch) / ks): an odd frame count pads the last
        frame group, an odd patch grid pads the last row/column.
        """
        patch = self.vision_patch_size
        if height % patch or width % patch:
            raise ValueError(
                f"frame size {height}x{width} is not a multiple of the vision patch size {patch}"
            )
        kt, ks = self.patchify_temporal, self.patchify_spatial
        groups = -(-num_frames // kt)
        return groups * -(-(height // patch) // ks) * -(-(width // patch) // ks)


__all__ = ["KangarooConfig"]
