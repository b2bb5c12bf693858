"""Typed `curation:` and `caption:` blocks of params.yaml (the values and why live in the YAML)."""

from typing import Literal

from pydantic import Field, field_validator

from kangaroo.config_policy import OBJECT_STORE_ENV
from kangaroo.settings_base import Section


class BasicFilterSettings(Section):
    """Metadata-only filters: no frame is decoded for these."""

    min_duration_s: float = 1.0  # under 1 s, 5 key frames are nearly the same moment
    max_duration_s: float = 36000.0  # 10 h: Kangaroo is a long-video model, only absurd lengths are dropped
    min_short_side: int = 96  # below ~96 px a 448 px encoder sees upscaled mush
    max_aspect_ratio: float = 3.0  # wider than 3:1 (banners, split screens) pads away most of a square frame


class TextFilterSettings(Section):
    """OCR text-coverage filter (rapidocr detection only; recognition is not needed for an area)."""

    enabled: bool = True
    num_frames: int = 3  # OCR is the costliest filter (~0.03-0.15 s/frame): 3 frames at most per video
    frame_size: int = 448  # rapidocr's detector still finds captions/subtitles at 448 px
    min_box_confidence: float = 0.3  # Open-Sora keeps OCR boxes with confidence > 0.3
    # Mean fraction of frame area under text boxes: a subtitle line is ~0.03-0.05, text-heavy clips ~0.33.
    max_coverage: float = 0.05


class FaceFilterSettings(Section):
    """Haar-cascade face-coverage filter."""

    enabled: bool = True
    num_frames: int = 6  # mean over 6 frames: a face passing by does not reject the clip
    frame_size: int = 320  # Haar cascades find faces >= ~24 px; 320 px keeps faces >= 8% of the frame
    use_profile: bool = False  # the profile cascade costs ~2.3x face time for no measured gain
    min_face_fraction: float = 0.08  # smaller faces are crowd/background, not the subject
    min_neighbors: int = 8  # 5 (OpenCV's example) fired on a textured synthetic background; 8 did not
    max_coverage: float = 0.08  # mean face area fraction; talking heads >= 0.5, Megamind.avi ~0.13


class StaticFilterSettings(Section):
    """Static-scene filter: mean absolute difference of consecutive low-resolution grey frames."""

    enabled: bool = True
    num_frames: int = 8  # 8 frames spread over the clip: 7 differences, cheap at 64 px
    frame_size: int = 64  # motion of whole objects survives 64 px; sensor/compression noise averages out
    # Mean |grey diff| (0-255): frozen clips score <= 0.05, the slowest real motion measured >= 0.6.
    min_motion: float = 0.2


class CurationSettings(Section):
    shard_size: int = Field(64, ge=1)  # videos per shard (one KFP task): ~1-2 min here, cheap to retry
    workers: int = Field(
        0, ge=0
    )  # worker processes per shard; 0 = the CPUs the cgroup quota allows (cpus.py)
    # RLIMIT_DATA per worker; 0 = no limit. A warm worker maps ~220 MB, a 4K decode a few hundred more: past
    # it an allocation is `rejected: resource_limit`, not an OOM-killed pod.
    worker_memory_mb: int = Field(1024, ge=0)
    video_timeout_s: float = Field(120.0, gt=0)  # a pathological file is killed and recorded as `timeout`
    # Workers fork from a clean server process (no inherited threads or locks).
    start_method: Literal["forkserver", "spawn", "fork"] = "forkserver"
    # Sidecars (captions, ground truth) next to the videos are not inputs.
    ignore_suffixes: list[str] = [".txt", ".json", ".jsonl", ".md", ".csv", ".yaml", ".yml"]
    basic: BasicFilterSettings = BasicFilterSettings()
    text: TextFilterSettings = TextFilterSettings()
    face: FaceFilterSettings = FaceFilterSettings()
    static: StaticFilterSettings = StaticFilterSettings()


class OpenAICaptionSettings(Section):
    """An OpenAI-compatible chat-completions server (vLLM, KServe) that serves a vision-language model."""

    base_url: str = "http://captioner.kangaroo.svc.cluster.local:8000/v1"  # in-cluster vLLM/KServe
    model: str = "captioner"
    api_key_env: str = "OPENAI_API_KEY"  # read from this env var (a Kubernetes secret); vLLM accepts any key
    max_concurrency: int = Field(8, ge=1)  # requests in flight; the server batches them
    timeout_s: float = Field(60.0, gt=0)  # per request; a stuck request is retried, never waited on forever
    max_retries: int = Field(4, ge=0)  # exponential backoff (backoff_s * 2^attempt) on 429/5xx/timeouts
    backoff_s: float = Field(1.0, ge=0)
    max_tokens: int = 128
    image_size: int = 448  # frames sent as JPEG, long side 448 px (the paper's encoder resolution)
    merge_with_llm: bool = True  # video-level caption merged by the same server's LLM

    @field_validator("api_key_env")
    @classmethod
    def not_an_object_store_credential(cls, name: str) -> str:
        if name in OBJECT_STORE_ENV:
            raise ValueError(f"{name} holds object-store credentials; the captioner never reads it")
        return name


class TransformersCaptionSettings(Section):
    """Any Hugging Face image-text-to-text model (hub id or local folder) plus an optional text LLM merger."""

    model: str = ""  # hub id or local folder of an image-text-to-text model
    merge_model: str = ""  # text LLM for the video-level merge; "" = deterministic merge
    batch_size: int = Field(5, ge=1)  # key frames per generate() call (one video's 5 frames)
    max_new_tokens: int = 64
    image_size: int = 448
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: str = "cpu"


class AlignmentTrainSettings(Section):
    """Locked-image tuning of a tiny SigLIP on the corpus's stills (kangaroo.curation.alignment.train)."""

    seed: int = 0
    max_images: int = Field(2000, ge=2)  # train stills read (~3 s) and embedded once by the locked tower
    eval_images: int = Field(300, ge=0)
    # 200 steps left it undertrained (held-out stills: own caption beats a random other 0.88, top-1 0.03;
    # 36% of make run's clean rows misaligned); 1,000 (~60 s): 0.99, 0.81, 4% (docs/params-history.md)
    steps: int = Field(1000, ge=1)
    batch_size: int = Field(128, ge=2)
    lr: float = Field(2e-3, gt=0)
    text_width: int = Field(64, ge=8)
    text_layers: int = Field(2, ge=1)
    max_text_tokens: int = Field(24, ge=4)  # still and alt-text captions stay under ~20 tokens
    # EDA-style text noise while training (alignment.train._noisy): trained on clean still captions only, the
    # text tower read alt-text badly (clean rows below random other videos: 43%, 34% with this noise; 0.7%
    # for precise captions of the same clips; 1,500-step tower)
    word_dropout: float = Field(0.2, ge=0, lt=1)


class AlignmentSettings(Section):
    """The CLIP-family model that scores caption-video alignment (stored per row, checked by the gate)."""

    enabled: bool = True
    model: str = ""  # hub id, local folder or s3:// prefix; "" = train a tiny one (AlignmentTrainSettings)
    batch_size: int = Field(32, ge=1)
    train: AlignmentTrainSettings = AlignmentTrainSettings()


class CaptionSettings(Section):
    backend: Literal["source", "transformers", "openai"] = "source"
    num_key_frames: int = Field(5, ge=1)  # the paper captions 5 key frames per video
    frame_prompt: str = "Describe this video frame in one sentence."
    merge_prompt: str = (
        "These are captions of key frames of one video with their timestamps in seconds. Write one "
        "paragraph describing the whole video in temporal order, without repeating yourself."
    )
    # The paper's refinement drops repeated content: sentences whose word sets overlap this much (IoU) with
    # an earlier one are dropped from a deterministic merge.
    duplicate_iou: float = Field(0.8, ge=0, le=1)
    openai: OpenAICaptionSettings = OpenAICaptionSettings()
    transformers: TransformersCaptionSettings = TransformersCaptionSettings()
    alignment: AlignmentSettings = AlignmentSettings()
