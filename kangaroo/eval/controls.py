"""Temporal controls: the same questions with the temporal signal destroyed at test time.

A model that answers direction, order and timestamp questions from the video's time axis must fall back to
chance on those categories when that axis is scrambled, while questions answerable from any single frame
(shape, colour, count) stay where they were. Each control rewrites a question's sampled frames before the
processor sees them, so the perturbed input flows through the same timestamp embedding, patchify and LLM:

- ``shuffled_frames``: the frames in a random order (a seeded permutation per question, never the identity),
  each keeping the timestamp of the position it now sits at; what is seen no longer happens when it did.
- ``reversed_frames``: the frames back to front, timestamps still increasing (a move left looks like right).
- ``constant_timestamps``: every frame gets the first frame's timestamp; the order of frames is kept, so only
  "when" is lost (a model that reads time from frame order alone is not affected by this one).
- ``repeated_frame``: one of the frames (seeded per question) at every timestamp: what an image model sees.
  Shuffling keeps the bag of frames, which can still tell when a single change happened (how many frames
  show the shape); one repeated frame leaves nothing of the time axis.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal, get_args

import numpy as np

TemporalControl = Literal["shuffled_frames", "reversed_frames", "constant_timestamps", "repeated_frame"]
TEMPORAL_CONTROLS: tuple[str, ...] = get_args(TemporalControl)


def _permutation(key: str, count: int) -> np.ndarray:
    """A permutation of range(count) seeded by `key`, never the identity when count > 1."""
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    order = rng.permutation(count)
    while count > 1 and np.array_equal(order, np.arange(count)):
        order = rng.permutation(count)
    return order


def perturb_frames(frames: Any, control: str, key: str) -> Any:
    """`frames` (a QuestionFrames-like dataclass with `.frames` [T,H,W,3] and `.timestamps` [T]) under
    `control`; `key` (the question id) seeds the shuffle so a run is reproducible."""
    pictures, stamps = np.asarray(frames.frames), np.asarray(frames.timestamps)
    if control == "shuffled_frames":
        return replace(frames, frames=pictures[_permutation(key, len(pictures))])
    if control == "reversed_frames":
        return replace(frames, frames=pictures[::-1].copy())
    if control == "constant_timestamps":
        return replace(frames, timestamps=np.full_like(stamps, stamps[0] if len(stamps) else 0.0))
    if control == "repeated_frame":
        if not len(pictures):
            return frames
        chosen = int(_permutation(key, len(pictures))[0])
        return replace(frames, frames=np.repeat(pictures[chosen : chosen + 1], len(pictures), axis=0))
    raise ValueError(f"unknown temporal control {control!r}; known: {', '.join(TEMPORAL_CONTROLS)}")


def controlled_sampler(sample_frames: Callable[[Any], Any], control: str) -> Callable[[Any], Any]:
    """Wrap a question -> frames sampler so every question's frames come out under `control`."""

    def sample(question: Any) -> Any:
        return perturb_frames(sample_frames(question), control, question.question_id)

    return sample


def control_summary(metrics: dict[str, Any], categories_at_chance: list[str]) -> dict[str, Any]:
    """The metrics.json entry of one control: accuracy and per-category accuracy/chance/count."""
    return {
        "accuracy": metrics["accuracy"],
        "chance": metrics["chance"],
        "num_questions": metrics["num_questions"],
        "per_category": {
            name: {
                "accuracy": entry["accuracy"],
                "chance": entry["chance"],
                "num_questions": entry["num_questions"],
            }
            for name, entry in metrics["per_category"].items()
        },
        "categories_at_chance": categories_at_chance,
    }
