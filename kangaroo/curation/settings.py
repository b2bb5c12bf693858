"""Typed `curation:` and `caption:` blocks of params.yaml (the values and why live in the YAML)."""

from typing import Literal

from pydantic import Field

from kangaroo.settings_base import Section


class BasicFilterSettings(Section):
    """Metadata-only filters: no frame is decoded for these."""

    min_duration_s: float = 1.0
    max_duration_s: float = 36000.0
    min_short_side: int = 96
    max_aspect_ratio: float = 3.0


class TextFilterSettings(Section):
    """OCR text-coverage filter (rapidocr detection only; recognition is not needed for an area)."""

    enabled: bool = True
    num_frames: int = 3
    frame_size: int = 448
    min_box_confidence: float = 0.3
    max_coverage: float = 0.05


class FaceFilterSettings(Section):
    """Haar-cascade face-coverage filter."""

    enabled: bool = True
    num_frames: int = 6
    frame_size: int = 320
    use_profile: bool = False
    min_face_fraction: float = 0.08
    min_neighbors: int = 8
    max_coverage: float = 0.08


class StaticFilterSettings(Section):
    """Static-scene filter: mean absolute difference of consecutive low-resolution grey frames."""

    enabled: bool = True
    num_frames: int = 8
    frame_size: int = 64
    min_motion: float = 0.2


class CurationSettings(Section):
    shard_size: int = Field(64, ge=1)
    workers: int = Field(0, ge=0)  # 0 = the CPUs the cgroup quota allows (curation/cpus.py)
    worker_memory_mb: int = Field(1024, ge=0)  # RLIMIT_DATA per worker process; 0 = no limit
    video_timeout_s: float = Field(120.0, gt=0)
    start_method: Literal["forkserver", "spawn", "fork"] = "forkserver"
    ignore_suffixes: list[str] = [".txt", ".json", ".jsonl", ".md", ".csv", ".yaml", ".yml"]
    basic: BasicFilterSettings = BasicFilterSettings()
    text: TextFilterSettings = TextFilterSettings()
    face: FaceFilterSettings = FaceFilterSettings()
    static: StaticFilterSettings = StaticFilterSettings()


class OpenAICaptionSettings(Section):
    """An OpenAI-compatible chat-completions server (vLLM, KServe) that serves a vision-language model."""

    base_url: str = "http://captioner.kangaroo.svc.cluster.local:8000/v1"
    model: str = "captioner"
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = Field(8, ge=1)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(4, ge=0)
    backoff_s: float = Field(1.0, ge=0)
    max_tokens: int = 128
    image_size: int = 448
    merge_with_llm: bool = True


class TransformersCaptionSettings(Section):
    """Any Hugging Face image-text-to-text model (hub id or local folder) plus an optional text LLM merger."""

    model: str = ""
    merge_model: str = ""
    batch_size: int = Field(5, ge=1)
    max_new_tokens: int = 64
    image_size: int = 448
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: str = "cpu"


class CaptionSettings(Section):
    backend: Literal["source", "transformers", "openai"] = "source"
    num_key_frames: int = Field(5, ge=1)
    frame_prompt: str = "Describe this video frame in one sentence."
    merge_prompt: str = (
        "These are captions of key frames of one video with their timestamps in seconds. Write one "
        "paragraph describing the whole video in temporal order, without repeating yourself."
    )
    duplicate_iou: float = Field(0.8, ge=0, le=1)
    openai: OpenAICaptionSettings = OpenAICaptionSettings()
    transformers: TransformersCaptionSettings = TransformersCaptionSettings()
