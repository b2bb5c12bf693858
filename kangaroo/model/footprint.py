"""Plan before renting GPUs: a profile's parameter counts and visual-token budgets, built on `meta`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from kangaroo.model.settings import ModelSettings


@dataclass(frozen=True)
class ModelPlan:
    """What a profile costs: parameters per module group and LLM tokens per video length."""

    total_parameters: int
    parameters: dict[str, int]
    image_size: int
    patches_per_frame: int
    visual_tokens_per_frame: float
    visual_tokens: dict[int, int] = field(default_factory=dict)  # frames -> visual tokens
    # visual tokens + the <vi_start>/<eof>/<eov>/<vi_end> markers
    video_tokens_with_markers: dict[int, int] = field(default_factory=dict)
    llm_max_position_embeddings: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def plan_model(settings: ModelSettings, frame_counts: tuple[int, ...] = (1, 16, 64, 160)) -> ModelPlan:
    """Build the model on `meta` (no weights, no downloads) and count parameters and visual tokens."""
    from kangaroo.model.build import build_model_and_processor

    # Counting needs no attention kernel: plan where flash-attn (the paper profile's) is not installed.
    counting = settings.model_copy(update={"attn_implementation": "sdpa"})
    model, processor = build_model_and_processor(counting, device="meta")
    groups = {
        name: sum(p.numel() for p in module.parameters()) for name, module in model.module_groups().items()
    }
    size = settings.image_size
    patch = model.config.vision_patch_size
    per_group = processor.tokens_per_group(size, size)
    return ModelPlan(
        total_parameters=sum(groups.values()),
        parameters=groups,
        image_size=size,
        patches_per_frame=(size // patch) ** 2,
        visual_tokens_per_frame=per_group / model.config.patchify_temporal,
        visual_tokens={n: model.num_visual_tokens(n, size, size) for n in frame_counts},
        video_tokens_with_markers={n: len(processor.video_token_ids(n, size)) for n in frame_counts},
        llm_max_position_embeddings=int(model.config.text_config.max_position_embeddings),
    )
