"""Kangaroo: frames -> vision encoder -> timestamp embedding -> spatial-temporal patchify -> projector -> LLM.

Data flow and tensor shapes (N = frames in the batch = sum of frames per video, P = patch size,
h = H / P, w = W / P, C = vision width, kt x ks x ks = patchify factors, D = LLM width):

1. `pixel_values` [N, 3, H, W] -> vision encoder -> `last_hidden_state` (vision_feature_layer -1) or
   `hidden_states[vision_feature_layer]` [N, h*w (+1 CLS), C]; a CLS token is dropped -> [N, h, w, C].
2. `frame_timestamps` [N] (seconds since the start of each video) -> sinusoids over seconds
   [N, temporal_embed_dim] -> Linear -> [N, C], added to every patch token of that frame (before patchify,
   as in the paper's figure). The embedding depends on time, never on a frame's index.
3. `video_frame_counts` [V] delimit the videos; each video's T frames are padded to a multiple of kt by
   repeating its last frame (so no group spans two videos), h, w to multiples of ks by repeating the edge ->
   gather each kt x ks x ks neighbourhood -> per video [ceil(T/kt) * ceil(h/ks) * ceil(w/ks), kt*ks*ks*C],
   all videos concatenated -> Linear -> patchify_hidden_size.
   Every sub-module runs exactly once per forward however many videos a row holds (the vision tower once per
   chunk, with the chunk count agreed across ranks): ZeRO-3 gathers weights with collectives at each module
   call, so data-dependent call counts would deadlock ranks holding different numbers of videos.
   (Concat + Linear is exactly a Conv3d with kernel = stride = (kt, ks, ks), VideoLLaMA2's STC operator,
   but stored as one plain matrix: it handles padded odd sizes explicitly and shards cleanly under ZeRO-3.)
   Paper: 1024 patches per 448 px frame, 2x2x2 -> 256 tokens per frame pair = 128 per frame.
4. Projector (Linear -> GELU -> Linear) -> [tokens, D].
5. The processor put exactly one `video_token_id` placeholder per visual token into `input_ids` (inside
   `<vi_start> ... <eof> ... <eov> <vi_end>` markers); visual tokens of all videos of the batch, in
   video order, replace the placeholders' embeddings in row-major order. `inputs_embeds` [B, L, D] -> LLM.

Packed-batch contract (several samples in one row, built by the training packer):
    * `input_ids` [B, L]; each row is the concatenation of whole samples (optionally followed by padding).
    * `position_ids` [B, L] restart at 0 at the first token of every sample (and of the trailing padding run),
      counting up by one inside a sample. A restart (position not previous + 1) starts a new sample.
    * `attention_mask` must be None (or all ones, which is then ignored): transformers derives a
      block-diagonal causal mask from the position_ids restarts (`masking_utils.find_packed_sequence_indices`)
      for sdpa/eager/flex, and flash-attention uses the same position_ids as varlen boundaries. A 2D mask with
      zeros together with restarting position_ids is rejected.
    * `labels` [B, L]: -100 on prompts, visual tokens, padding and every sample's first token, so that no
      loss term predicts one sample from another.
    * `pixel_values`, `frame_timestamps`, `video_frame_counts`: the videos of all rows concatenated in the
      order their placeholders appear in the flattened `input_ids` (row 0 left to right, then row 1 ...).
      All frames of one batch share one resolution.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import AutoModel, AutoModelForCausalLM, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_outputs import CausalLMOutputWithPast

from kangaroo.model import packed_attention  # noqa: F401  (registers the sdpa_packed attention)
from kangaroo.model.configuration_kangaroo import KangarooConfig

IGNORE_INDEX = -100  # transformers' "no loss here" label


class TimestampEmbedding(nn.Module):
    """Real-time position of a frame: seconds -> sinusoids with periods from min to max period -> Linear.

    [N] float seconds -> [N, vision width].
    """

    def __init__(self, config: KangarooConfig):
        super().__init__()
        self.num_frequencies = config.temporal_embed_dim // 2
        self.min_period_s, self.max_period_s = config.temporal_min_period_s, config.temporal_max_period_s
        self.proj = nn.Linear(2 * self.num_frequencies, config.vision_config.hidden_size)

    def forward(self, timestamps: torch.Tensor) -> torch.Tensor:
        # Computed on the fly (not a buffer) so meta-device construction and dtype casts never touch it;
        # always float32: bf16 cannot resolve sub-second phases of hour-long videos.
        periods = torch.logspace(
            math.log10(self.min_period_s),
            math.log10(self.max_period_s),
            self.num_frequencies,
            device=timestamps.device,
            dtype=torch.float32,
        )
        angles = timestamps.to(torch.float32)[:, None] * (2 * math.pi / periods)[None, :]
        features = torch.cat([angles.sin(), angles.cos()], dim=-1)
        return self.proj(features.to(self.proj.weight.dtype))


class SpatioTemporalPatchify(nn.Module):
    """kt frames x ks x ks patches -> one token, for all videos of a batch in one call.

    [N, h, w, C] frames of V videos (`frame_counts` [V], sum N; default one video) ->
    [sum over videos of ceil(T_v/kt) * ceil(h/ks) * ceil(w/ks), C'], video after video.
    """

    def __init__(self, config: KangarooConfig):
        super().__init__()
        self.kt, self.ks = config.patchify_temporal, config.patchify_spatial
        width = config.vision_config.hidden_size
        self.merge = nn.Linear(self.kt * self.ks * self.ks * width, config.patchify_hidden_size)

    def forward(self, frames: torch.Tensor, frame_counts: list[int] | None = None) -> torch.Tensor:
        kt, ks = self.kt, self.ks
        counts = [frames.shape[0]] if frame_counts is None else [int(c) for c in frame_counts]
        # Each video padded to a multiple of kt by repeating its last frame, so no temporal group spans two
        # videos; then one Linear over all groups: a single module call whatever the number of videos
        # (ZeRO-3 gathers weights per call, so per-video calls would differ between ranks and deadlock).
        index, start = [], 0
        for count in counts:
            index.extend(range(start, start + count))
            index.extend([start + count - 1] * ((-count) % kt))
            start += count
        if len(index) != frames.shape[0]:
            frames = frames[torch.tensor(index, device=frames.device)]
        t, h, w, c = frames.shape
        pad_h, pad_w = (-h) % ks, (-w) % ks
        if pad_h:
            frames = torch.cat([frames, frames[:, -1:].expand(-1, pad_h, -1, -1)], dim=1)
        if pad_w:
            frames = torch.cat([frames, frames[:, :, -1:].expand(-1, -1, pad_w, -1)], dim=2)
        gt, gh, gw = frames.shape[0] // kt, frames.shape[1] // ks, frames.shape[2] // ks
        groups = frames.reshape(gt, kt, gh, ks, gw, ks, c).permute(0, 2, 4, 1, 3, 5, 6)
        return self.merge(groups.reshape(gt * gh * gw, kt * ks * ks * c))


class KangarooProjector(nn.Module):
    """LLaVA-style 2-layer MLP: [tokens, C'] -> [tokens, D]."""

    def __init__(self, config: KangarooConfig):
        super().__init__()
        llm_width = config.text_config.hidden_size
        self.linear_1 = nn.Linear(config.patchify_hidden_size, llm_width)
        self.act = ACT2FN[config.projector_hidden_act]
        self.linear_2 = nn.Linear(llm_width, llm_width)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(tokens)))


def fan_in_init_(module: nn.Module) -> None:
    """Fan-in scaled (LeCun normal) weights, zero biases, for every Linear in `module` (the patchify +
    projector chain; the tiny fresh LLM with `model.llm.weight_init: fan_in`).

    The LLM-wide `initializer_range` (0.02) suits 1024-4096-wide layers; in the tiny model's 96-256-wide
    connector, three stacked 0.02 layers shrink the visual signal ~100x and visual question answering sat on a
    long loss plateau (measured: still colour questions 0.50 -> 0.84 accuracy after 400 steps with this init).
    `transformers.initialization` skips weights loaded from a checkpoint.
    """
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            init.normal_(layer.weight, mean=0.0, std=layer.in_features**-0.5)
            if layer.bias is not None:
                init.zeros_(layer.bias)


class KangarooPreTrainedModel(PreTrainedModel):
    config: KangarooConfig
    config_class = KangarooConfig
    base_model_prefix = ""
    input_modalities = ("video", "image", "text")
    supports_gradient_checkpointing = True
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _no_split_modules = ["LlamaDecoderLayer", "SiglipEncoderLayer", "CLIPEncoderLayer", "EvaVisionBlock"]

    def _init_weights(self, module: nn.Module) -> None:
        # transformers calls this per Linear (the connector modules themselves hold no direct weights). The
        # timestamp projection keeps the small default: it is added to the features, not a link in the chain.
        connector = (getattr(self, name, None) for name in ("patchify", "projector"))
        if isinstance(module, nn.Linear) and any(
            part is not None and any(module is layer for layer in part.modules()) for part in connector
        ):
            fan_in_init_(module)
        else:
            super()._init_weights(module)


class KangarooForConditionalGeneration(KangarooPreTrainedModel, GenerationMixin):
    """The Kangaroo video-language model; the module docstring gives shapes and the packed-batch contract."""

    def __init__(self, config: KangarooConfig):
        super().__init__(config)
        self.vision_tower = AutoModel.from_config(config.vision_config)
        self.temporal_embedding = TimestampEmbedding(config)
        self.patchify = SpatioTemporalPatchify(config)
        self.projector = KangarooProjector(config)
        self.language_model = AutoModelForCausalLM.from_config(config.text_config)
        self.post_init()

    # ----- module groups and embeddings -----
    def module_groups(self) -> dict[str, nn.Module]:
        """Named parts the curriculum freezes or trains; together they hold every parameter exactly once."""
        return {
            "vision": self.vision_tower,
            "temporal": self.temporal_embedding,
            "patchify": self.patchify,
            "projector": self.projector,
            "llm": self.language_model,
        }

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_output_embeddings(value)

    def num_visual_tokens(self, num_frames: int, height: int, width: int) -> int:
        """LLM tokens one video of `num_frames` frames at `height` x `width` px becomes (markers excluded)."""
        return self.config.num_visual_tokens(num_frames, height, width)

    # ----- visual path -----
    def _encode_frames(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] -> [N, h, w, C] patch features of `vision_feature_layer`.

        With `vision_frames_per_chunk` the tower runs chunk by chunk (bounded activation memory). ZeRO-3
        gathers the tower's weights with collectives on every call, so in distributed training all ranks
        must make the same number of calls: the chunk count is agreed across ranks (max) and a rank with
        fewer frames runs its extra chunks on a blank frame that enters the result with weight zero.
        """
        patch = self.config.vision_patch_size
        h, w = pixel_values.shape[-2] // patch, pixel_values.shape[-1] // patch
        num_frames = pixel_values.shape[0]
        chunk = self.config.vision_frames_per_chunk or num_frames
        num_chunks = math.ceil(num_frames / chunk)
        if self.config.vision_frames_per_chunk and self.training:
            num_chunks = _max_over_ranks(num_chunks, pixel_values.device)
        outputs = [
            self._encode_chunk(pixel_values[start : start + chunk], h, w)
            for start in range(0, num_frames, chunk)
        ]
        features = torch.cat(outputs, dim=0)
        for _ in range(num_chunks - len(outputs)):
            blank = self._encode_chunk(pixel_values.new_zeros((1, *pixel_values.shape[1:])), h, w)
            features = features + 0.0 * blank.sum()
        return features.reshape(num_frames, h, w, features.shape[-1])

    def _encode_chunk(self, pixel_values: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """One vision-tower call: [n, 3, H, W] -> [n, h*w, C] (a CLS token dropped)."""
        native = getattr(self.config.vision_config, "image_size", None)
        extra = {}
        if native is not None and tuple(pixel_values.shape[-2:]) != (native, native):
            extra["interpolate_pos_encoding"] = True
        layer = self.config.vision_feature_layer
        result = self.vision_tower(pixel_values, output_hidden_states=layer != -1, return_dict=True, **extra)
        # -1: the encoder's output with its final LayerNorm, so every vision weight is used and trained
        hidden = result.last_hidden_state if layer == -1 else result.hidden_states[layer]
        if hidden.shape[1] == h * w + 1:  # drop the CLS token
            hidden = hidden[:, 1:]
        return hidden

    def get_video_features(
        self, pixel_values: torch.Tensor, frame_timestamps: torch.Tensor, video_frame_counts: torch.Tensor
    ) -> torch.Tensor:
        """All videos of the batch -> projected visual tokens [sum of tokens per video, D], in video order."""
        vision_dtype = next(self.vision_tower.parameters()).dtype
        features = self._encode_frames(pixel_values.to(vision_dtype))
        features = features + self.temporal_embedding(frame_timestamps)[:, None, None, :].to(features.dtype)
        counts = [int(c) for c in video_frame_counts.tolist()]
        if sum(counts) != features.shape[0]:
            raise ValueError(
                f"video_frame_counts sum to {sum(counts)} but pixel_values hold {features.shape[0]} frames"
            )
        if self.config.visual_feature_standardization == "per_video":
            features = standardize_per_video(features, counts)
        # one call per module whatever the number of videos: ranks of a ZeRO-3 job stay in step
        return self.projector(self.patchify(features, counts))

    def _idle_visual_path(self, inputs_embeds: torch.Tensor) -> torch.Tensor:
        """A zero-weighted pass over one blank frame for text-only training batches.

        Every rank then runs the same modules with the same collectives (ZeRO-3 gathers, DDP gradient
        buckets), so a text-only batch on one rank cannot hang ranks that got videos; gradients are zero.
        """
        size = getattr(self.config.vision_config, "image_size", None) or 2 * self.config.vision_patch_size
        blank = inputs_embeds.new_zeros((1, 3, size, size))
        features = self.get_video_features(
            blank, blank.new_zeros(1), torch.ones(1, dtype=torch.long, device=blank.device)
        )
        return 0.0 * features.sum()

    # ----- forward -----
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        frame_timestamps: torch.Tensor | None = None,
        video_frame_counts: torch.LongTensor | None = None,
        cache=None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        r"""
        Args:
            input_ids: [B, L] token ids with one `video_token_id` per visual token.
            attention_mask: [B, L] 1 = real token, 0 = padding (None for packed rows, see module docstring).
            position_ids: [B, L]; restarts at 0 mark packed samples.
            pixel_values: [N, 3, H, W] normalised frames of all videos, concatenated in placeholder order.
            frame_timestamps: [N] seconds of each frame from its video's start (images: 0).
            video_frame_counts: [V] frames per video (sum = N); default: one video holding all N frames.
            labels: [B, L] next-token targets, -100 where no loss is taken.
        Returns:
            CausalLMOutputWithPast with `loss` (mean over label tokens) and `logits` [B, L, vocab]; in
            training mode with labels, `logits` holds only the rows that predict a label ([labels, vocab]).
        """
        if "past_key_values" in kwargs:  # transformers 5 renamed it; accept both spellings
            cache = kwargs.pop("past_key_values")
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if pixel_values is not None and input_ids is None:
            raise ValueError("pixel_values need input_ids: the video placeholders locate the visual tokens")
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)

        if pixel_values is not None and input_ids is not None:
            if frame_timestamps is None:
                raise ValueError("pixel_values need frame_timestamps (seconds per frame; 0 for images)")
            if video_frame_counts is None:
                video_frame_counts = torch.tensor([pixel_values.shape[0]], device=pixel_values.device)
            visual = self.get_video_features(pixel_values, frame_timestamps, video_frame_counts)
            placeholder = input_ids == self.config.video_token_id
            if int(placeholder.sum()) != visual.shape[0]:
                raise ValueError(
                    f"{int(placeholder.sum())} video placeholder tokens in input_ids but the videos give "
                    f"{visual.shape[0]} visual tokens: frames or resolution differ from the processor's"
                )
            inputs_embeds = inputs_embeds.masked_scatter(
                placeholder.unsqueeze(-1).to(inputs_embeds.device), visual.to(inputs_embeds.dtype)
            )
        elif self.training and input_ids is not None:
            inputs_embeds = inputs_embeds + self._idle_visual_path(inputs_embeds)

        if position_ids is not None and cache is None and is_packed(position_ids):
            if attention_mask is not None and attention_mask.ndim == 2:
                if not bool(attention_mask.bool().all()):
                    raise ValueError(
                        "packed rows (position_ids restart inside a row) take attention_mask=None; give "
                        "trailing padding its own position_ids run from 0 instead of a 0/1 mask"
                    )
                attention_mask = None  # let transformers build the block-diagonal mask from position_ids
            # transformers derives the per-sample mask only without a cache; packed rows are never decoded.
            use_cache = False

        # Training takes the loss only where a label is (answers: a few tokens of a long prompt), so only
        # those positions go through the LM head: the [B, L, vocab] logits are the largest activation
        # (Llama-3: 128K vocab x 22K tokens) and most of them would be thrown away.
        predicts_label = None
        if labels is not None and self.training and isinstance(logits_to_keep, int) and logits_to_keep == 0:
            predicts_label = torch.zeros_like(labels, dtype=torch.bool)
            predicts_label[:, :-1] = labels[:, 1:] != IGNORE_INDEX
        outputs = self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=use_cache,
            labels=labels if predicts_label is None else None,
            logits_to_keep=logits_to_keep if predicts_label is None else predicts_label,
            **kwargs,
        )
        loss = outputs.loss
        if predicts_label is not None:
            loss = nn.functional.cross_entropy(outputs.logits.float(), labels[:, 1:][predicts_label[:, :-1]])
        return CausalLMOutputWithPast(
            loss=loss,
            logits=outputs.logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    def prepare_inputs_for_generation(self, *args, is_first_iteration: bool | None = False, **kwargs):
        """Visual inputs are consumed in the prefill step only; later steps read the cache."""
        model_inputs = super().prepare_inputs_for_generation(
            *args, is_first_iteration=is_first_iteration, **kwargs
        )
        if not is_first_iteration and kwargs.get("use_cache", True):
            for key in ("pixel_values", "frame_timestamps", "video_frame_counts"):
                model_inputs.pop(key, None)
        return model_inputs

    @torch.no_grad()
    def chat(
        self,
        video_path,
        query: str,
        processor=None,
        history: list[dict] | None = None,
        max_new_tokens: int = 512,
        num_frames: int | None = None,
        sampling_fps: float = 1.0,
        **generate_kwargs,
    ) -> tuple[str, list[dict]]:
        """Answer `query` about a video (or image) file, like the official release's `model.chat`.

        Frames: a frame every 1/`sampling_fps` s, at most `num_frames` (default 64) spread uniformly, at the
        processor's size. Returns `(answer, history)`; pass `history` back for a follow-up turn about the same
        video. `processor` defaults to the one saved with the model. `temperature`/`top_p` imply sampling.
        """
        from kangaroo.model.chat import chat_once

        return chat_once(
            self,
            video_path,
            query,
            processor,
            history,
            max_new_tokens,
            num_frames,
            sampling_fps,
            **generate_kwargs,
        )


def standardize_per_video(features: torch.Tensor, counts: list[int], eps: float = 1e-4) -> torch.Tensor:
    """[N, h, w, C] features of videos with `counts` frames each -> zero mean, unit std per channel per video.

    Statistics run over every token (frames x h x w) of one video, never across videos, so a sample's visual
    tokens do not depend on what else is packed into its batch.
    """
    parts = []
    for video in torch.split(features, counts):
        mean = video.mean(dim=(0, 1, 2), keepdim=True)
        std = video.std(dim=(0, 1, 2), keepdim=True) if video[..., 0].numel() > 1 else torch.ones_like(mean)
        parts.append((video - mean) / (std + eps))
    return torch.cat(parts)


def _max_over_ranks(value: int, device: torch.device) -> int:
    """`value` maximised over the ranks of the default process group (itself outside distributed runs)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    backend_device = device if dist.get_backend() != "gloo" else torch.device("cpu")
    tensor = torch.tensor([value], dtype=torch.long, device=backend_device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())


def is_packed(position_ids: torch.Tensor) -> bool:
    """True when some row's positions restart (do not count up by one), i.e. the row holds several samples."""
    if position_ids.shape[-1] < 2:
        return False
    return bool((position_ids[..., 1:] != position_ids[..., :-1] + 1).any())


__all__ = ["KangarooForConditionalGeneration", "KangarooPreTrainedModel", "is_packed"]
