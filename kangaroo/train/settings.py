"""Typed `train:` block of params.yaml: the five-stage curriculum, one `StageSettings` block per stage.

A stage is pure configuration (torchtune's split): `kangaroo.train.loop.train_stage` reads one block and
runs it. The stage names are the ones the pipeline components and dvc.yaml use.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from kangaroo.settings_base import Section

STAGE_NAMES: tuple[str, ...] = (
    "image_text_pretrain",
    "video_text_pretrain",
    "pretrain_refinement",
    "instruction_tuning",
    "long_video_tuning",
)
ModuleGroup = Literal["vision", "temporal", "patchify", "projector", "llm"]
# images   = images.jsonl image-caption pairs (train split), rendered "Describe the image." -> caption
# captions = the captioned dataset.jsonl, rendered "Describe the video." -> caption
# image_qa = image_questions.jsonl train split (questions about the stills), rendered like qa
# qa       = questions.jsonl train split, rendered question + lettered options -> "option text (B)"
DataSource = Literal["images", "image_qa", "captions", "qa"]
QUESTION_SOURCES: tuple[DataSource, ...] = ("image_qa", "qa")  # rows with a question, options and a category


class StagePhase(Section):
    """One phase of a stage: the stage's block with these settings replaced, for `share` of the stage's
    budget (of `max_steps`, or of `epochs` over the phase's own data). Each phase is its own short run (fresh
    optimizer, its own warmup and decay), starting from the previous phase's weights; the stage's model is
    the last phase's. Only *what* a stage learns from and its schedule can differ between phases: the model
    shape, batch and memory plan stay the stage's."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")  # names the phase's log rows and folders
    share: float = Field(gt=0, le=1)  # the phases' shares add up to 1
    sources: list[DataSource] | None = Field(None, min_length=1)
    question_categories: list[str] | None = None
    qa_repeats: int | None = Field(None, ge=1)
    lr: float | None = Field(None, gt=0)
    lr_schedule: Literal["cosine", "linear", "constant"] | None = None
    warmup_ratio: float | None = Field(None, ge=0, lt=1)
    min_lr_ratio: float | None = Field(None, ge=0, le=1)


class StageSettings(Section):
    """One curriculum stage. Batch size is given in tokens: each rank's micro-batch is one packed row of
    `context_length` tokens, and the gradient accumulation is derived as
    `batch_tokens / (context_length * world_size)` so the global batch stays the same on any node pool."""

    sources: list[DataSource] = Field(min_length=1)
    trainable: list[ModuleGroup] = Field(min_length=1)
    max_frames: int = Field(gt=0)
    sampling_fps: float = Field(gt=0)
    resolution: int = Field(gt=0)
    context_length: int = Field(gt=0)
    batch_tokens: int = Field(gt=0)
    max_steps: int | None = Field(None, gt=0)  # optimizer steps; None = run `epochs` passes over the data
    epochs: float = Field(1.0, gt=0)
    lr: float = Field(gt=0)
    # LR multiplier per trainable module group, e.g. {vision: 0.1}: a pre-trained tower trained gently beside
    # a fresh LLM (LLaVA-OneVision trains its SigLIP at 1/5 of the LLM's LR); unlisted groups train at `lr`
    lr_scale: dict[ModuleGroup, Annotated[float, Field(gt=0)]] = {}
    lr_schedule: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    min_lr_ratio: float = Field(0.0, ge=0, le=1)
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    adam_betas: tuple[float, float] = (0.9, 0.999)
    zero_stage: Literal[0, 1, 2, 3] = 2
    precision: Literal["fp32", "bf16"] = "bf16"
    offload_optimizer: bool = False
    offload_params: bool = False  # ZeRO-3 only
    gradient_checkpointing: bool = False
    # ZeRO communication buckets (elements). None = min(DeepSpeed's 5e8, the model's parameter count): the
    # 5e8 default allocates ~2 GB per bucket, which dominates a step of a tiny CPU model.
    zero_bucket_elements: int | None = Field(None, gt=0)
    # optimizer steps between checkpoints (a pre-empted node loses at most this many); 0 = only at the end
    checkpoint_every: int = Field(500, ge=0)
    keep_checkpoints: int = Field(2, ge=1)
    packing: bool = True  # false = one sample per padded row (the benchmark's baseline)
    qa_repeats: int = Field(1, ge=1)  # how often each training question appears per epoch (small QA sets)
    # the question sources (image_qa, qa) train only on questions of these categories; [] = every category
    question_categories: list[str] = []
    # "previous" = the previous stage's output model (`<out>/../<previous stage>/model`), "scratch" = a
    # freshly built model from the `model:` block, anything else = a model folder.
    init_from: str = "previous"
    # [] = one run of the block above; else its phases, in order (StagePhase): e.g. first one question
    # category, then all of them, each with its own warmup and decay
    phases: list[StagePhase] = []

    def gradient_accumulation(self, world_size: int) -> int:
        """Micro-batches per optimizer step on each rank (at least 1)."""
        return max(1, round(self.batch_tokens / (self.context_length * world_size)))

    @model_validator(mode="after")
    def _check(self) -> StageSettings:
        if self.batch_tokens < self.context_length:
            raise ValueError(f"batch_tokens {self.batch_tokens} < context_length {self.context_length}")
        if self.offload_params and self.zero_stage != 3:
            raise ValueError("offload_params needs zero_stage 3")
        frozen = sorted(set(self.lr_scale) - set(self.trainable))
        if frozen:
            raise ValueError(f"lr_scale names groups {frozen} that are not in trainable {self.trainable}")
        if self.question_categories and not set(self.sources) & set(QUESTION_SOURCES):
            raise ValueError(
                f"question_categories {self.question_categories} need a question source "
                f"({', '.join(QUESTION_SOURCES)}) in sources {self.sources}"
            )
        names = [phase.name for phase in self.phases]
        if len(set(names)) != len(names):
            raise ValueError(f"phase names {names} repeat")
        shares = sum(phase.share for phase in self.phases)
        if self.phases and abs(shares - 1) > 1e-6:
            raise ValueError(f"the shares of phases {names} add up to {shares:g}, not 1")
        for phase in self.phases:
            try:
                self.phase(phase, self.max_steps)
            except ValidationError as err:
                problems = "; ".join(error["msg"] for error in err.errors())
                raise ValueError(f"phase {phase.name!r}: {problems}") from None
        return self

    def phase(self, phase: StagePhase, steps: int | None) -> StageSettings:
        """This stage's settings for one of its phases (a single-run block): STEPS optimizer steps, or
        without a step budget its share of the stage's `epochs`."""
        changes = phase.model_dump(exclude_none=True, exclude={"name", "share"})
        if steps:
            changes["max_steps"] = steps
        else:
            changes["epochs"] = self.epochs * phase.share
        return StageSettings.model_validate({**self.model_dump(exclude={"phases"}), **changes})

    def runs(self, max_steps: int | None = None) -> list[tuple[str | None, StageSettings]]:
        """(phase name, settings) of each run this stage makes, in order; (None, the stage) without phases.
        MAX_STEPS (tests, smoke runs) replaces the stage's step budget, which the phases split by share
        (rounded so that they add up to it, at least one step each)."""
        if not self.phases:
            return [(None, self if max_steps is None else self.model_copy(update={"max_steps": max_steps}))]
        total = max_steps or self.max_steps
        runs, cumulative_share, steps_so_far = [], 0.0, 0
        for phase in self.phases:
            cumulative_share += phase.share
            steps = max(1, round(total * cumulative_share) - steps_so_far) if total else None
            steps_so_far += steps or 0
            runs.append((phase.name, self.phase(phase, steps)))
        return runs


# What each stage reads, what it trains and where it starts (the paper's curriculum; sizes, LRs and steps are
# each profile's). A profile's stage block is merged over these.
STAGE_DEFAULTS: dict[str, dict[str, Any]] = {
    # 1: align vision to the LLM on image-caption pairs; LLaVA-style, only the connector learns at first
    "image_text_pretrain": {
        "sources": ["images"],
        "trainable": ["temporal", "patchify", "projector"],
        "init_from": "scratch",  # pretrained vision + LLM (paper) or fresh tiny weights
    },
    # 2: video-caption pairs, the LLM joins
    "video_text_pretrain": {
        "sources": ["captions"],
        "trainable": ["temporal", "patchify", "projector", "llm"],
    },
    # 3: refined captions, higher resolution and more frames, everything trains (ZeRO-3: shard it all)
    "pretrain_refinement": {
        "sources": ["captions"],
        "trainable": ["vision", "temporal", "patchify", "projector", "llm"],
        "zero_stage": 3,
    },
    # 4: QA as chat + caption-as-answer (paper: up to 64 frames / ~10K context)
    "instruction_tuning": {
        "sources": ["qa", "captions"],
        "trainable": ["temporal", "patchify", "projector", "llm"],
    },
    # 5: long videos (paper: up to 160 frames / ~22K context); its long steps checkpoint more often
    "long_video_tuning": {
        "sources": ["qa", "captions"],
        "trainable": ["temporal", "patchify", "projector", "llm"],
        "checkpoint_every": 200,
    },
}


class CurriculumStages(Section):
    image_text_pretrain: StageSettings
    video_text_pretrain: StageSettings
    pretrain_refinement: StageSettings
    instruction_tuning: StageSettings
    long_video_tuning: StageSettings

    @model_validator(mode="before")
    @classmethod
    def _stage_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {
            name: {**STAGE_DEFAULTS[name], **block}
            if name in STAGE_DEFAULTS and isinstance(block, dict)
            else block
            for name, block in data.items()
        }


class VisionPretrainSettings(Section):
    """`train.vision_pretrain`: off when `model.vision_model` names a pretrained tower (paper profile)."""

    enabled: bool = False
    # The tiny tower's shape tags click late (docs/params-history.md#train): held-out tag mAP 0.66 after 6,000
    # steps, 0.95 after 10,000, 0.998 after 15,000.
    steps: int = Field(25000, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)
    min_tag_count: int = Field(5, ge=1)  # rarer words/pairs are noise, not a visual concept
    max_tags: int = Field(1024, ge=1)  # the most frequent tags; the head's width
    eval_images: int = Field(400, ge=0)  # held-out (eval-split) stills whose tag mAP is reported
    # > 0: each token must also say where in the patch grid it sits (cross-entropy over the places): tags
    # alone teach the tower that *what* matters and not *where*, and a token's place is what motion changes
    place_loss_weight: float = Field(0.0, ge=0)
    # > 0: where the stills annotate their objects (images.jsonl `shapes`, centre x/y), the token over each
    # object must carry its tags and the others must not: dense supervision of "what is where"
    region_loss_weight: float = Field(0.0, ge=0)
    eval_every: int = Field(2500, ge=0)  # steps between held-out mAP logs (summary curve); 0 = end only


class PackedDataSettings(Section):
    """`train.data`: how `kangaroo pack` shards the data and how a stage streams it (train.stream)."""

    shard_mb: int = Field(64, ge=1)  # litdata chunk bound; one medium larger than this gets a chunk alone
    pack_seed: int = 0  # records are written in a seeded hash order, so every shard mixes sources
    workers: int = Field(2, ge=0)  # DataLoader worker processes per rank that fetch shards and decode
    prefetch_rows: int = Field(2, ge=1)  # packed rows each worker decodes ahead
    # Rows are packed within windows of this many shards (a seeded shard order per epoch): a rank keeps a
    # window's shards on local disk, never the whole data set, and FFD still sees thousands of samples.
    window_shards: int = Field(16, ge=1)
    cache_dir: str = ""  # local shard cache for s3:// data; "" = $TMPDIR/kangaroo-packed


class TrainSettings(Section):
    seed: int = 0
    log_every: int = Field(1, ge=1)  # optimizer steps between metrics.jsonl rows (DVC plots read it)
    deterministic: bool = True  # torch deterministic algorithms: resume reproduces the loss sequence
    torch_threads: int = Field(0, ge=0)  # intra-op threads per rank; 0 = torch's default
    # Retention on the checkpoint volume (kangaroo.train.checkpointing.prune_old_runs): run folders kept per
    # stage, the current one included (0 = keep all); folders active more recently are never deleted.
    checkpoint_keep_runs: int = Field(3, ge=0)
    checkpoint_prune_after_h: float = Field(24.0, ge=0)
    # Memory planner: the node shape the paper profile plans for, and the accelerator memory per GPU.
    plan_gpus_per_node: int = Field(8, ge=1)
    plan_num_nodes: int = Field(1, ge=1)
    plan_gpu_memory_gb: float = Field(80.0, gt=0)
    stages: CurriculumStages
    vision_pretrain: VisionPretrainSettings = VisionPretrainSettings()
    data: PackedDataSettings = PackedDataSettings()

    def stage(self, name: str) -> StageSettings:
        if name not in STAGE_NAMES:
            from kangaroo.train.errors import TrainInputError

            raise TrainInputError(f"unknown stage {name!r}; stages are {', '.join(STAGE_NAMES)}")
        return getattr(self.stages, name)
