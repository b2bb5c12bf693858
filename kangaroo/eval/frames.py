"""Frames shown to the model for one question.

Whole clip: Kangaroo's dynamic sampling (`VideoReader.sample_fps`: a frame every 1/max_fps s, at most
num_frames, else num_frames spread uniformly), exactly as the training data is sampled. A start/end window:
`min(num_frames, window x max_fps)` frames at the centres of equal segments of the window.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from kangaroo.eval.benchmarks import MCQuestion


@dataclass(frozen=True)
class FramePlan:
    """How many frames at which times (seconds in the video) for one question's window."""

    times: np.ndarray
    window_start: float


def plan_frames(
    duration: float, start: float | None, end: float | None, num_frames: int, max_fps: float
) -> FramePlan:
    """`min(num_frames, window * max_fps)` (at least 1) times at the centres of equal segments of the window.

    The window is clamped to the video; an empty or inverted window falls back to the whole video.
    """
    low = min(max(start or 0.0, 0.0), duration)
    high = duration if end is None else min(max(end, 0.0), duration)
    if high <= low:
        low, high = 0.0, duration
    span = high - low
    count = max(1, min(num_frames, math.floor(span * max_fps + 1e-9)))
    times = low + (np.arange(count) + 0.5) * span / count
    return FramePlan(times=times, window_start=low)


@dataclass(frozen=True)
class QuestionFrames:
    """Frames for the processor (`.frames`, `.timestamps`) plus where they came from."""

    frames: np.ndarray
    timestamps: np.ndarray  # seconds from the window start: the window is the video the model sees
    video_timestamps: np.ndarray  # seconds in the source file
    backend: str


class FrameSampler:
    """Decodes each question's frames, reusing the last few clips (several questions share a clip)."""

    def __init__(self, video_settings: Any, num_frames: int, max_fps: float, size: int, cache_size: int = 8):
        self.video_settings = video_settings
        self.num_frames = num_frames
        self.max_fps = max_fps
        self.size = size
        self._cache: OrderedDict[tuple, QuestionFrames] = OrderedDict()
        self._cache_size = cache_size

    def __call__(self, question: MCQuestion) -> QuestionFrames:
        """Raises kangaroo.video.errors.VideoError naming the file when it cannot be decoded."""
        key = (question.video, question.start, question.end)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        from kangaroo.video.reader import open_video

        policy = self.video_settings.resize_policy
        with open_video(question.video, self.video_settings) as reader:
            if question.start is None and question.end is None:
                # Whole clip: Kangaroo's dynamic sampling, the same call the training data uses.
                sampled = reader.sample_fps(self.max_fps, self.num_frames, size=self.size, policy=policy)
                window_start = 0.0
            else:
                plan = plan_frames(
                    reader.duration, question.start, question.end, self.num_frames, self.max_fps
                )
                sampled = reader.sample_at(plan.times, size=self.size, policy=policy)
                window_start = plan.window_start
            backend = str(getattr(reader, "backend", self.video_settings.backend))
        frames = QuestionFrames(
            frames=sampled.frames,
            timestamps=sampled.timestamps - window_start,
            video_timestamps=sampled.timestamps,
            backend=backend,
        )
        self._cache[key] = frames
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return frames
