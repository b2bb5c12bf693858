"""Build a Kangaroo model + processor from the `model:` settings, or load a saved one.

* No `vision_model` / `llm_model` paths (tiny profile): fresh random init of the configured shapes and the
  deterministic tiny tokenizer.
* With paths (paper profile): vision tower and LLM via `from_pretrained` (hub id or local folder), tokenizer
  from the LLM plus the video special tokens; temporal embedding, patchify and projector freshly initialised.
* `device="meta"`: shapes only, no weights and no downloads (configs come from settings) — for planning.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LlamaConfig,
)
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
from transformers.models.auto.modeling_auto import MODEL_MAPPING

from kangaroo.errors import KangarooError
from kangaroo.model import tokenizer as tok
from kangaroo.model.configuration_kangaroo import KangarooConfig
from kangaroo.model.modeling_kangaroo import KangarooForConditionalGeneration, fan_in_init_
from kangaroo.model.processing_kangaroo import KangarooProcessor
from kangaroo.model.settings import ModelSettings

log = logging.getLogger(__name__)


class ModelBuildError(KangarooError):
    """A model path or setting cannot be turned into a model (names the path/key and why)."""


def vision_config(settings: ModelSettings, use_pretrained: bool):
    if use_pretrained and settings.vision_model:
        config = AutoConfig.from_pretrained(settings.vision_model)
        # full CLIP/SigLIP checkpoints: take the vision half
        return _without_pooling_head(getattr(config, "vision_config", config))
    v = settings.vision
    if v.model_type not in CONFIG_MAPPING:
        raise ModelBuildError(f"model.vision.model_type: unknown vision config type {v.model_type!r}")
    return _without_pooling_head(
        CONFIG_MAPPING[v.model_type](
            hidden_size=v.hidden_size,
            num_hidden_layers=v.num_hidden_layers,
            num_attention_heads=v.num_attention_heads,
            intermediate_size=v.intermediate_size,
            patch_size=v.patch_size,
            image_size=v.image_size,
        )
    )


def _without_pooling_head(vision_config):
    """SigLIP's attention-pooling head makes the image embedding; a video LLM reads patch tokens only, and
    weights that never get gradients would make DDP/ZeRO complain about unused parameters."""
    if hasattr(vision_config, "vision_use_head"):
        vision_config.vision_use_head = False
    return vision_config


def _apply_rope_scaling(text_config, settings: ModelSettings):
    """Extend RoPE as `model.rope_scaling` says; "dynamic" changes nothing for positions below the native
    maximum, so short-context stages and packed rows of short samples behave exactly as before."""
    scaling = settings.rope_scaling
    if scaling.rope_type == "default":
        return text_config
    params = dict(getattr(text_config, "rope_parameters", None) or {})
    params.update(rope_type=scaling.rope_type, factor=scaling.factor)
    if scaling.rope_type == "yarn":
        params.setdefault("original_max_position_embeddings", text_config.max_position_embeddings)
    text_config.rope_parameters = params
    return text_config


def _text_config(settings: ModelSettings, use_pretrained: bool, vocab_size: int):
    if use_pretrained and settings.llm_model:
        return _apply_rope_scaling(AutoConfig.from_pretrained(settings.llm_model), settings)
    m = settings.llm
    config = LlamaConfig(
        hidden_size=m.hidden_size,
        num_hidden_layers=m.num_hidden_layers,
        num_attention_heads=m.num_attention_heads,
        num_key_value_heads=m.num_key_value_heads,
        intermediate_size=m.intermediate_size,
        vocab_size=max(vocab_size, m.vocab_size),
        rope_parameters={"rope_type": "default", "rope_theta": m.rope_theta},
        max_position_embeddings=m.max_position_embeddings,
        tie_word_embeddings=False,
    )
    return _apply_rope_scaling(config, settings)


def _tokenizer(settings: ModelSettings, use_pretrained: bool):
    source = settings.tokenizer or (settings.llm_model if use_pretrained else "")
    if not source:
        return tok.build_tiny_tokenizer(settings.tiny_vocab_size)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except OSError as err:
        raise ModelBuildError(
            f"model.tokenizer / model.llm_model: cannot load a tokenizer from {source!r}: {err}"
        ) from err
    tok.add_kangaroo_special_tokens(tokenizer)
    return tokenizer


def build_config(settings: ModelSettings, tokenizer, use_pretrained: bool) -> KangarooConfig:
    """KangarooConfig for these settings; token ids come from `tokenizer`."""
    ids = tokenizer.convert_tokens_to_ids
    vocab_size = len(tokenizer)
    config = KangarooConfig(
        vision_config=vision_config(settings, use_pretrained),
        text_config=_text_config(settings, use_pretrained, vocab_size),
        vision_feature_layer=settings.vision_feature_layer,
        vision_frames_per_chunk=settings.vision_frames_per_chunk,
        visual_feature_standardization=settings.visual_feature_standardization,
        temporal_embed_dim=settings.temporal_embed_dim,
        temporal_min_period_s=settings.temporal_min_period_s,
        temporal_max_period_s=settings.temporal_max_period_s,
        patchify_temporal=settings.patchify_temporal,
        patchify_spatial=settings.patchify_spatial,
        video_token_id=ids(tok.VISUAL_TOKEN),
        vi_start_token_id=ids(tok.VI_START),
        vi_end_token_id=ids(tok.VI_END),
        eof_token_id=ids(tok.EOF),
        eov_token_id=ids(tok.EOV),
    )
    if config.text_config.vocab_size < vocab_size:  # pretrained LLM + added video tokens: grown after loading
        log.info(
            "tokenizer has %d tokens, LLM vocab %d: embeddings will be resized",
            vocab_size,
            config.text_config.vocab_size,
        )
    for sub in (config, config.vision_config, config.text_config):
        sub._attn_implementation = settings.attn_implementation
    config.dtype = getattr(torch, settings.dtype)
    return config


def build_processor(settings: ModelSettings, tokenizer, config: KangarooConfig) -> KangarooProcessor:
    return KangarooProcessor(
        tokenizer=tokenizer,
        image_size=settings.image_size,
        patch_size=config.vision_patch_size,
        patchify_temporal=config.patchify_temporal,
        patchify_spatial=config.patchify_spatial,
        image_mean=settings.image_mean,
        image_std=settings.image_std,
    )


def build_tokenizer(settings: ModelSettings):
    """The tokenizer of the model these settings build (reads model.tokenizer, llm_model, tiny_vocab_size)."""
    return _tokenizer(settings, True)


def build_processor_only(settings: ModelSettings) -> KangarooProcessor:
    """The processor of the model these settings build, without building (or loading) the model."""
    tokenizer = _tokenizer(settings, True)
    return build_processor(settings, tokenizer, build_config(settings, tokenizer, use_pretrained=True))


def _generation_config(tokenizer) -> GenerationConfig:
    stops = [tokenizer.convert_tokens_to_ids(t) for t in (tok.EOT, tok.EOS) if t in tokenizer.get_vocab()]
    return GenerationConfig(
        eos_token_id=stops or [tokenizer.eos_token_id],
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        max_new_tokens=512,
    )


def _reinit_connector(model: KangarooForConditionalGeneration) -> None:
    std = model.config.initializer_range
    for module in model.temporal_embedding.modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
            nn.init.zeros_(module.bias)
    fan_in_init_(model.patchify)
    fan_in_init_(model.projector)


def _init_fresh_llm(model: KangarooForConditionalGeneration, settings: ModelSettings) -> None:
    """`model.llm.weight_init: fan_in` re-draws a freshly built LLM's Linear weights with std 1/sqrt(fan-in).

    Llama's 0.02 suits 4096-wide layers; in a 128-wide LLM it is ~4x below fan-in scale, attention starts
    uniform and learning to look up one of several objects ("which shape is red?") sat on a long plateau.
    """
    if settings.llm.weight_init == "fan_in":
        fan_in_init_(model.language_model)


def _load_vision_tower(path: str, vision_config, dtype: torch.dtype, attn: str) -> nn.Module:
    model_class = MODEL_MAPPING[type(vision_config)]
    return model_class.from_pretrained(path, config=vision_config, dtype=dtype, attn_implementation=attn)


def build_model_and_processor(
    settings: ModelSettings, device: str | torch.device = "cpu"
) -> tuple[KangarooForConditionalGeneration, KangarooProcessor]:
    """Model + processor for `settings` (see the module docstring for the three cases)."""
    meta = str(device) == "meta"
    if meta:  # shapes and parameter counts only: the kernel changes neither, and flash-attn needs a GPU
        settings = settings.model_copy(update={"attn_implementation": "sdpa"})
    use_pretrained = not meta
    # Meta builds never download: the tiny tokenizer stands in (only special-token ids are read from it;
    # the LLM vocabulary comes from `model.llm.vocab_size`).
    tokenizer = tok.build_tiny_tokenizer(settings.tiny_vocab_size) if meta else _tokenizer(settings, True)
    config = build_config(settings, tokenizer, use_pretrained)
    dtype = getattr(torch, settings.dtype)
    pretrained = use_pretrained and (settings.vision_model or settings.llm_model)
    if meta or pretrained:
        with torch.device("meta"):
            model = KangarooForConditionalGeneration(config)
    else:
        torch.manual_seed(settings.seed)
        model = KangarooForConditionalGeneration(config)
        _init_fresh_llm(model, settings)
    if pretrained:
        try:
            if settings.vision_model:
                model.vision_tower = _load_vision_tower(
                    settings.vision_model, config.vision_config, dtype, settings.attn_implementation
                )
            if settings.llm_model:
                model.language_model = AutoModelForCausalLM.from_pretrained(
                    settings.llm_model,
                    config=config.text_config,  # carries the RoPE scaling
                    dtype=dtype,
                    attn_implementation=settings.attn_implementation,
                )
        except OSError as err:
            raise ModelBuildError(
                f"model.vision_model / model.llm_model: cannot load weights: {err}"
            ) from err
        torch.manual_seed(settings.seed)
        for name, part in model.module_groups().items():
            if any(p.is_meta for p in part.parameters()):
                if name in (
                    "vision",
                    "llm",
                ):  # no path given for this part: fresh init of the configured shape
                    fresh = (AutoModel if name == "vision" else AutoModelForCausalLM).from_config(
                        config.vision_config if name == "vision" else config.text_config
                    )
                    setattr(model, "vision_tower" if name == "vision" else "language_model", fresh)
                    if name == "llm":
                        _init_fresh_llm(model, settings)
                else:
                    part.to_empty(device="cpu")
        _reinit_connector(model)
        if len(tokenizer) > model.get_input_embeddings().num_embeddings:
            model.language_model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
        # one config object per part, so what is saved is what the loaded parts run with
        model.config.vision_config = model.vision_tower.config
        model.config.text_config = model.language_model.config
    if not meta:
        model = model.to(device=device, dtype=dtype)
    model.generation_config = _generation_config(tokenizer)
    processor = build_processor(settings, tokenizer, config)
    model.processor = processor  # what `model.chat` uses when no processor is passed
    return model, processor


def checkpoint_folder(path: str | Path) -> Path:
    """The saved checkpoint in `path` itself or in its `model/` subfolder (a training stage's output)."""
    path = Path(path)
    for folder in (path, path / "model"):
        if (folder / "config.json").is_file():
            return folder
    raise ModelBuildError(f"{path}: not a saved Kangaroo checkpoint (no config.json in it or in model/)")


def load_model_and_processor(
    path: str | Path,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    attn_implementation: str | None = None,
) -> tuple[KangarooForConditionalGeneration, KangarooProcessor]:
    """A checkpoint folder written by `model.save_pretrained` + `processor.save_pretrained`, or a training
    stage's output folder (the KFP Model artifact), whose `model/` subfolder holds that checkpoint."""
    path = checkpoint_folder(path)
    kwargs = {"dtype": dtype} if dtype is not None else {}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    model = KangarooForConditionalGeneration.from_pretrained(path, **kwargs).to(device)
    processor = KangarooProcessor.from_pretrained(path)
    model.processor = processor
    return model, processor


def save_model_and_processor(model, processor, path: str | Path) -> Path:
    """Write one folder (safetensors weights, config, generation config, tokenizer, processor config)."""
    path = Path(path)
    model.save_pretrained(path, safe_serialization=True)
    processor.save_pretrained(path)
    return path
