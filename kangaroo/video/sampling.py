"""Which frames to keep: uniform, fixed-fps with a cap (Kangaroo's dynamic sampling), explicit times."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def uniform_indices(num_frames_in_video: int, num_frames: int) -> np.ndarray:
    """`min(num_frames, N)` distinct indices at the centres of equal segments of the video."""
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    count = min(num_frames, num_frames_in_video)
    centres = (np.arange(count) + 0.5) * num_frames_in_video / count
    return np.minimum(centres.astype(np.int64), num_frames_in_video - 1)


def indices_at(timestamps: np.ndarray, times: Sequence[float]) -> np.ndarray:
    """For each time, the last frame presented at or before it (the first frame for earlier times)."""
    positions = np.searchsorted(timestamps, np.asarray(times, np.float64) + 1e-9, side="right") - 1
    return np.clip(positions, 0, len(timestamps) - 1).astype(np.int64)


def fps_indices(timestamps: np.ndarray, duration: float, fps: float, max_frames: int) -> np.ndarray:
    """Kangaroo's dynamic sampling: one frame every 1/fps seconds while that stays within `max_frames`;
    longer videos get `max_frames` frames spread uniformly over the whole video instead."""
    if fps <= 0 or max_frames <= 0:
        raise ValueError(f"fps and max_frames must be positive, got {fps} and {max_frames}")
    start = float(timestamps[0])
    wanted = int(np.floor((duration - start) * fps + 1e-9)) or 1
    if wanted > max_frames:
        return uniform_indices(len(timestamps), max_frames)
    times = start + np.arange(wanted) / fps
    return np.unique(indices_at(timestamps, times))
