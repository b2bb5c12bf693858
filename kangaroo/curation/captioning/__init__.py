"""Captioning of curated videos: K key frames captioned, then merged into one video caption.

Backends: `source` (the dataset's own caption), `transformers` (any HF image-text-to-text model) and
`openai` (an OpenAI-compatible chat endpoint such as vLLM or KServe)."""

from kangaroo.curation.captioning.base import Captioner, CaptionError, FrameCaption, merge_deterministic
from kangaroo.curation.captioning.dataset import (
    CaptionSummary,
    caption_curated,
    caption_shard,
    make_captioner,
    show_caption_summary,
)
from kangaroo.curation.captioning.merge import merge_captions

__all__ = [
    "CaptionError",
    "CaptionSummary",
    "Captioner",
    "FrameCaption",
    "caption_curated",
    "caption_shard",
    "make_captioner",
    "merge_captions",
    "merge_deterministic",
    "show_caption_summary",
]
