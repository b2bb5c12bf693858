"""The captioner interface (frame level, then video level) and the deterministic merge every backend can use.

Kangaroo's recipe: caption K key frames of a video, then merge the frame captions and their timestamps into
one video caption, dropping repeated content (an IoU-style duplicate-sentence filter).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

from kangaroo.curation.filters import VideoInfo
from kangaroo.errors import KangarooError

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[a-z0-9']+")


class CaptionError(KangarooError):
    """A captioner could not produce a caption: missing source caption, model or endpoint failure."""


@dataclass(frozen=True)
class FrameCaption:
    """A key frame's caption and its presentation time (seconds)."""

    t: float
    caption: str


class Captioner(ABC):
    """Two steps: `caption_frames` (one caption per key frame) and `caption_video` (merge them)."""

    name: str = ""

    @abstractmethod
    def caption_frames(self, frames, meta: VideoInfo) -> list[FrameCaption]:
        """One caption per frame of `frames` (a kangaroo.video SampledFrames), in time order."""

    def caption_video(self, frame_captions: list[FrameCaption], meta: VideoInfo) -> str:
        """The video caption; by default the deterministic merge of the frame captions."""
        return merge_deterministic(frame_captions, self.duplicate_iou)

    duplicate_iou: float = 0.8
    # Videos captioned at once by caption_curated's threads: 1 for local models; remote backends raise it so
    # their request pool stays full across videos.
    parallel_videos: int = 1

    def close(self) -> None:  # noqa: B027 - optional hook: most backends hold nothing to release
        """Release models or connections."""


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def word_iou(a: str, b: str) -> float:
    words_a, words_b = set(_WORD.findall(a.lower())), set(_WORD.findall(b.lower()))
    if not words_a or not words_b:
        return 0.0
    return len(words_a & words_b) / len(words_a | words_b)


def merge_deterministic(frame_captions: list[FrameCaption], duplicate_iou: float) -> str:
    """Frame captions' sentences in time order, dropping any sentence whose word set overlaps an earlier
    kept sentence by `duplicate_iou` or more (the paper's repeated-content removal, without an LLM)."""
    kept: list[str] = []
    for frame_caption in sorted(frame_captions, key=lambda fc: fc.t):
        for sentence in split_sentences(frame_caption.caption):
            if all(word_iou(sentence, earlier) < duplicate_iou for earlier in kept):
                kept.append(sentence if sentence[-1] in ".!?" else sentence + ".")
    return " ".join(kept)


def merge_prompt_text(prompt: str, frame_captions: list[FrameCaption]) -> str:
    """The LLM merge prompt: the instruction, then one `[t s] caption` line per key frame."""
    lines = "\n".join(f"[{fc.t:.1f} s] {fc.caption}" for fc in sorted(frame_captions, key=lambda fc: fc.t))
    return f"{prompt}\n\n{lines}"
