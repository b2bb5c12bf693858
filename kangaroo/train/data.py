"""What each training source says, and how one packed sample becomes processor tensors.

Sources (StageSettings.sources), each a row file of the corpus or the captioned dataset (train split only;
`kangaroo pack` keeps everything else out of the shards):

- ``images``: ``CORPUS/images.jsonl`` rows, one frame each, "Describe the image." -> caption.
- ``image_qa``: ``CORPUS/image_questions.jsonl`` rows: multiple-choice questions about the stills, rendered
  exactly like ``qa`` (LLaVA-style instruction data mixes image and video questions).
- ``captions``: ``DATASET/dataset.jsonl`` (the captioned, gated dataset), "Describe the video." -> caption;
  clips behind eval-split questions of the corpus are left out (their captions would leak the answers).
- ``qa``: ``CORPUS/questions.jsonl`` rows, rendered with the evaluation prompt (question + lettered options)
  -> "option text (B)", so the answer carries both the option text a likelihood-mode scorer ranks and the
  letter a generation-mode scorer extracts.

Videos are sampled with Kangaroo's dynamic frame sampling (`VideoReader.sample_fps`): one frame every
1/sampling_fps seconds, capped at the stage's `max_frames` (longer videos get `max_frames` frames spread
uniformly). A sample longer than the stage's context is dropped, never cut (cutting would cut visual tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kangaroo.jsonl import read_jsonl as read_records
from kangaroo.train.errors import TrainInputError
from kangaroo.train.settings import QUESTION_SOURCES, StageSettings
from kangaroo.video import SampledFrames, VideoSettings, open_video, read_image

LETTERS = "ABCDEFGH"
DESCRIBE_IMAGE = "Describe the image."
DESCRIBE_VIDEO = "Describe the video."
# lmms-eval MVBench wording, the same prompt `kangaroo.eval` scores with.
QUESTION_TEMPLATE = "Question: {question}\nOptions:\n{options}\nOnly give the best option."


@dataclass(frozen=True)
class SourceFile:
    """Where a source's rows live and which row field names its media file."""

    folder: str  # "corpus" or "dataset"
    file: str
    media_field: str
    is_image: bool


SOURCES: dict[str, SourceFile] = {
    "images": SourceFile("corpus", "images.jsonl", "image", True),
    "image_qa": SourceFile("corpus", "image_questions.jsonl", "image", True),
    "captions": SourceFile("dataset", "dataset.jsonl", "video", False),
    "qa": SourceFile("corpus", "questions.jsonl", "video", False),
}


@dataclass(frozen=True)
class TrainSample:
    """One processed conversation: input_ids/labels [L]; visual tensors as the processor returns them."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    pixel_values: torch.Tensor | None
    frame_timestamps: torch.Tensor | None
    video_frame_counts: torch.Tensor | None
    source: str
    key: str

    def __len__(self) -> int:
        return int(self.input_ids.numel())

    @property
    def num_frames(self) -> int:
        return int(self.video_frame_counts.sum()) if self.video_frame_counts is not None else 0


def render_question(question: str, options: list[str]) -> str:
    """The user turn of a multiple-choice question (question, "(A) ..." options, answer instruction)."""
    lines = "\n".join(f"({LETTERS[i]}) {option}" for i, option in enumerate(options))
    return QUESTION_TEMPLATE.format(question=question.strip(), options=lines)


def render_answer(options: list[str], answer_letter: str) -> str:
    """The assistant reply for a multiple-choice question: the option text, then its letter ("red (B)").

    Option text first so a likelihood scorer (lmms-eval mcppl style, `eval.likelihood_continuation:
    option`) ranks exactly what was trained; the letter after it is what a generation scorer extracts.
    """
    index = LETTERS.index(answer_letter)
    return f"{options[index]} ({answer_letter})"


def conversation(user_text: str, reply: str) -> list[dict[str, Any]]:
    """A one-turn chat with the visual placeholder at the start of the user turn."""
    return [
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": user_text}]},
        {"role": "assistant", "content": reply},
    ]


def sample_text(source: str, row: dict[str, Any]) -> tuple[str, str]:
    """(user turn, reply) of one row of `source`."""
    if source == "images":
        return DESCRIBE_IMAGE, row["caption"]
    if source == "captions":
        return DESCRIBE_VIDEO, row["caption"]
    if source in QUESTION_SOURCES:
        return render_question(row["question"], row["options"]), render_answer(row["options"], row["answer"])
    raise TrainInputError(f"unknown training source {source!r}; sources are {', '.join(SOURCES)}")


def sample_key(source: str, row: dict[str, Any]) -> str:
    if source in QUESTION_SOURCES:
        return str(row["question_id"])
    if source == "captions":
        return str(row.get("key") or row["video"])
    return str(row["image"])


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file; raises TrainInputError naming the file and line on bad JSON."""
    return read_records(path, TrainInputError)


def planned_frames(
    is_image: bool, start: float, duration: float, num_frames: int, stage: StageSettings
) -> int:
    """Frames `read_frames` returns at most for a medium with this metadata (no decoding): what dynamic
    sampling asks for before repeated frames of a sparse or variable-rate video collapse."""
    if is_image:
        return 1
    wanted = int(np.floor((duration - start) * stage.sampling_fps + 1e-9)) or 1
    return min(wanted, stage.max_frames) if wanted <= stage.max_frames else min(stage.max_frames, num_frames)


def read_frames(media: Path, is_image: bool, stage: StageSettings, video: VideoSettings) -> SampledFrames:
    """Decode the sample's frames: an image at the stage resolution, or a video with dynamic sampling."""
    if is_image:
        return read_image(
            media, size=stage.resolution, policy=video.resize_policy, max_pixels=video.max_image_pixels
        )
    with open_video(media, video) as reader:
        return reader.sample_fps(
            fps=stage.sampling_fps,
            max_frames=stage.max_frames,
            size=stage.resolution,
            policy=video.resize_policy,
        )


def process_sample(
    processor, frames: SampledFrames, source: str, key: str, user_text: str, reply: str, resolution: int
) -> TrainSample:
    """Frames + chat -> the processor's tensors for one conversation."""
    batch = processor(conversations=[conversation(user_text, reply)], videos=[frames], image_size=resolution)
    return TrainSample(
        input_ids=batch["input_ids"][0],
        labels=batch["labels"][0],
        pixel_values=batch["pixel_values"],
        frame_timestamps=batch["frame_timestamps"],
        video_frame_counts=batch["video_frame_counts"],
        source=source,
        key=key,
    )
