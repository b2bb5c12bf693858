"""The frame plan: decode each video once, at the largest size any filter asks for, at the union of the
timestamps the filters ask for, then hand each filter its own frames resized down to its own size."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from kangaroo.curation.filters import Filter, VideoInfo


def uniform_times(num_frames: int, duration: float) -> list[float]:
    """Centres of `num_frames` equal segments: never the first or last frame (fades, black frames)."""
    return [(i + 0.5) * duration / num_frames for i in range(num_frames)]


def resize_long_side(frame: np.ndarray, long_side: int) -> np.ndarray:
    """Shrink (never enlarge) so the long side is `long_side`, keeping the aspect ratio."""
    height, width = frame.shape[:2]
    scale = long_side / max(height, width)
    if scale >= 1.0:
        return frame
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def decode_short_side(meta: VideoInfo, long_side: int) -> int | None:
    """The short side (the video module's `resize` policy size) that brings the long side down to
    `long_side`, keeping the aspect ratio; None = native resolution (we never upscale)."""
    long_native, short_native = max(meta.width, meta.height), min(meta.width, meta.height)
    if long_side >= long_native:
        return None
    return max(2, round(long_side * short_native / long_native))


@dataclass
class FramePlan:
    """Which timestamps each frame filter gets, and one decode request covering them all."""

    times_per_filter: dict[str, list[float]]
    times: list[float]
    long_side: int
    native: bool = False

    @classmethod
    def build(
        cls, filters: list[Filter], meta: VideoInfo, timestamps: np.ndarray, every_frame: bool = False
    ) -> FramePlan:
        """The sparse plan over a video whose frames are presented at `timestamps` (seconds). With
        `every_frame`, the exhaustive reference plan instead: every frame filter sees every frame at
        native resolution."""
        wanted = {f.name: f.frames for f in filters if f.frames is not None}
        stamps = np.asarray(timestamps, np.float64)
        if every_frame:
            times = stamps.tolist()
            return cls({name: times for name in wanted}, times, max(meta.width, meta.height), native=True)

        def snap(times: list[float]) -> list[float]:
            # The frame presented at or before each time, so filters asking for nearly the same moment
            # share one decoded frame.
            positions = np.clip(np.searchsorted(stamps, times, side="right") - 1, 0, len(stamps) - 1)
            return stamps[positions].tolist()

        times_per_filter = {
            name: snap(uniform_times(req.num_frames, meta.duration)) for name, req in wanted.items()
        }
        union = sorted({t for times in times_per_filter.values() for t in times})
        long_side = max((req.size for req in wanted.values()), default=0)
        return cls(times_per_filter, union, long_side)

    def decode(self, reader, meta: VideoInfo) -> dict[float, np.ndarray]:
        """One decode of the union of timestamps; returns frames keyed by planned timestamp."""
        if not self.times:
            return {}
        sampled = reader.sample_at(self.times, size=decode_short_side(meta, self.long_side), policy="resize")
        return dict(zip(self.times, sampled.frames, strict=True))

    def frames_for(self, filter_: Filter, decoded: dict[float, np.ndarray]) -> np.ndarray:
        frames = [decoded[t] for t in self.times_per_filter[filter_.name]]
        if not self.native:
            frames = [resize_long_side(frame, filter_.frames.size) for frame in frames]
        return np.stack(frames)
