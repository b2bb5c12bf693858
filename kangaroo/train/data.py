"""Training samples for one stage: the stage's sources -> frames (video module) -> chat -> processor tensors.

Sources (StageSettings.sources):

- ``images``: ``CORPUS/images.jsonl`` train-split rows, one frame each, "Describe the image." -> caption.
- ``image_qa``: ``CORPUS/image_questions.jsonl`` train-split rows: multiple-choice questions about the stills,
  rendered exactly like ``qa`` (LLaVA-style instruction data mixes image and video questions).
- ``captions``: ``DATASET/dataset.jsonl`` (the captioned, gated dataset), "Describe the video." -> caption;
  clips behind eval-split questions of the corpus are left out (their captions would leak the answers).
- ``qa``: ``CORPUS/questions.jsonl`` rows of the **train** split only (the eval split is held out), rendered
  with the evaluation prompt (question + lettered options) -> "option text (B)", so the answer carries both
  the option text a likelihood-mode scorer ranks and the letter a generation-mode scorer extracts.

Videos are sampled with Kangaroo's dynamic frame sampling (`VideoReader.sample_fps`): one frame every
1/sampling_fps seconds, capped at the stage's `max_frames` (longer videos get `max_frames` frames spread
uniformly). A sample longer than the stage's context is dropped, never cut (cutting would cut visual tokens).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from kangaroo.jsonl import read_jsonl as read_records
from kangaroo.train.errors import TrainInputError
from kangaroo.train.settings import StageSettings
from kangaroo.video import SampledFrames, VideoError, VideoSettings, open_video, read_image

log = logging.getLogger(__name__)

LETTERS = "ABCDEFGH"
DESCRIBE_IMAGE = "Describe the image."
DESCRIBE_VIDEO = "Describe the video."
# lmms-eval MVBench wording, the same prompt `kangaroo.eval` scores with.
QUESTION_TEMPLATE = "Question: {question}\nOptions:\n{options}\nOnly give the best option."


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


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file; raises TrainInputError naming the file and line on bad JSON."""
    return read_records(path, TrainInputError)


def resolve(base: Path, relative: str) -> Path:
    """JSONL paths are relative to the folder holding the JSONL file unless absolute."""
    path = Path(relative)
    return path if path.is_absolute() else base / path


@dataclass(frozen=True)
class RawSample:
    """What to read and say, before decoding: a media file, image or video, and the two chat turns."""

    source: str
    key: str
    media: Path
    is_image: bool
    user_text: str
    reply: str


def list_raw_samples(
    stage: StageSettings, corpus_dir: Path | None, dataset_dir: Path | None
) -> list[RawSample]:
    """Every sample the stage's sources define, in file order."""
    samples: list[RawSample] = []
    for source in stage.sources:
        if source == "images":
            folder = _require(corpus_dir, "--corpus", "images")
            for row in read_jsonl(folder / "images.jsonl"):
                if row.get("split", "train") == "train":
                    samples.append(
                        RawSample(
                            "images",
                            row["image"],
                            resolve(folder, row["image"]),
                            True,
                            DESCRIBE_IMAGE,
                            row["caption"],
                        )
                    )
        elif source == "captions":
            folder = _require(dataset_dir, "--dataset", "captions")
            held_out = held_out_videos(corpus_dir)
            for row in read_jsonl(folder / "dataset.jsonl"):
                key = row.get("key") or row["video"]
                if Path(key).name in held_out or Path(row["video"]).name in held_out:
                    continue  # a clip the evaluation asks about: its caption would leak the answers
                samples.append(
                    RawSample(
                        "captions", key, resolve(folder, row["video"]), False, DESCRIBE_VIDEO, row["caption"]
                    )
                )
        elif source in ("image_qa", "qa"):
            folder = _require(corpus_dir, "--corpus", source)
            is_image = source == "image_qa"
            rows = read_jsonl(folder / ("image_questions.jsonl" if is_image else "questions.jsonl"))
            repeats = 1 if is_image else stage.qa_repeats
            for row in rows:
                if row.get("split") != "train":
                    continue  # the eval split is held out for kangaroo.eval
                media = resolve(folder, row["image" if is_image else "video"])
                user = render_question(row["question"], row["options"])
                reply = render_answer(row["options"], row["answer"])
                samples.extend(
                    RawSample(source, row["question_id"], media, is_image, user, reply)
                    for _ in range(repeats)
                )
    return samples


def held_out_videos(corpus_dir: Path | None) -> set[str]:
    """File names of the videos behind eval-split questions (kept out of every training source)."""
    questions = corpus_dir / "questions.jsonl" if corpus_dir else None
    if questions is None or not questions.is_file():
        return set()
    return {Path(row["video"]).name for row in read_jsonl(questions) if row.get("split") == "eval"}


def _require(folder: Path | None, flag: str, source: str) -> Path:
    if folder is None:
        raise TrainInputError(f"the stage reads source {source!r}: pass {flag} DIR")
    if not folder.is_dir():
        raise TrainInputError(f"{flag} {folder}: not a folder")
    return folder


def read_frames(raw: RawSample, stage: StageSettings, video: VideoSettings) -> SampledFrames:
    """Decode the sample's frames: an image at the stage resolution, or a video with dynamic sampling."""
    if raw.is_image:
        return read_image(
            raw.media, size=stage.resolution, policy=video.resize_policy, max_pixels=video.max_image_pixels
        )
    with open_video(raw.media, video) as reader:
        return reader.sample_fps(
            fps=stage.sampling_fps,
            max_frames=stage.max_frames,
            size=stage.resolution,
            policy=video.resize_policy,
        )


def load_stage_samples(
    stage: StageSettings,
    processor,
    video: VideoSettings,
    corpus_dir: Path | None,
    dataset_dir: Path | None,
    show_progress: bool = True,
) -> tuple[list[TrainSample], dict[str, int]]:
    """Decode and process every sample of the stage. Returns the samples and counts of what was skipped.

    Undecodable media (the raw corpus holds planted bad files), media over the resource limits (pixel and
    decompression bombs: `resource_limit`) and samples longer than the context are skipped with a warning;
    the counts go into the run summary.
    """
    raws = list_raw_samples(stage, corpus_dir, dataset_dir)
    if not raws:
        raise TrainInputError(f"sources {stage.sources}: no training samples found")
    frames_cache: dict[Path, SampledFrames | None] = {}
    # One pixel tensor per media file, shared by all its questions: 9,000 stills' frames take ~0.4 GB once
    pixels_cache: dict[Path, torch.Tensor] = {}
    samples: list[TrainSample] = []
    skipped: Counter[str] = Counter()
    skip_reasons: dict[Path, str] = {}
    for raw in tqdm(raws, desc="samples", disable=not show_progress, leave=False):
        if raw.media not in frames_cache:
            try:
                frames_cache[raw.media] = read_frames(raw, stage, video)
            except VideoError as err:
                log.warning("skipping %s: %s", raw.media, err)
                frames_cache[raw.media] = None
                skip_reasons[raw.media] = "resource_limit" if err.cause == "resource_limit" else "undecodable"
        frames = frames_cache[raw.media]
        if frames is None:
            skipped[skip_reasons[raw.media]] += 1
            continue
        batch = processor(
            conversations=[conversation(raw.user_text, raw.reply)],
            videos=[frames],
            image_size=stage.resolution,
        )
        input_ids = batch["input_ids"][0]
        if input_ids.numel() > stage.context_length:
            skipped["too_long"] += 1
            continue
        samples.append(
            TrainSample(
                input_ids=input_ids,
                labels=batch["labels"][0],
                pixel_values=pixels_cache.setdefault(raw.media, batch["pixel_values"]),
                frame_timestamps=batch["frame_timestamps"],
                video_frame_counts=batch["video_frame_counts"],
                source=raw.source,
                key=raw.key,
            )
        )
    if skipped:
        log.warning("skipped samples: %s", dict(skipped))
    if not samples:
        raise TrainInputError(f"sources {stage.sources}: every sample was skipped ({dict(skipped)})")
    return samples, dict(skipped)
