"""decord as a fast path, trusted per file only after it agrees with PyAV.

decord returns wrong frames on some real files (sparse/backward access on MPEG-4 Part 2 with B-frames,
H.264 High 4:4:4, MPEG-1/2) and cannot open some containers. A file is handed to decord only when its
codec is not on the deny-list, decord opens it, reports the same frame count, and its frames at a few
indices (read in a backward, sparse pattern) equal PyAV's exact frames.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)

# (codec, reason) pairs decord mis-decodes on random access; checked before any verification decode.
_DENIED_CODECS = {
    "mpeg1video": "MPEG-1",
    "mpeg2video": "MPEG-2",
}


def deny_reason(codec: str, profile: str | None, has_b_frames: bool, container_format: str) -> str | None:
    """Why decord must not be used on this stream, or None if it may be tried."""
    if codec in _DENIED_CODECS:
        return f"{_DENIED_CODECS[codec]} is on the decord deny-list"
    if codec == "mpeg4" and has_b_frames:
        return "MPEG-4 Part 2 with B-frames (decord returns wrong frames on sparse access)"
    if codec == "h264" and profile and "4:4:4" in profile:
        return "H.264 High 4:4:4 (decord returns wrong frames on backward access)"
    if any(name in container_format for name in ("ogg", "mpeg", "mpegts")):
        return f"container {container_format} (decord cannot open or seek it reliably)"
    return None


class DecordSource:
    """A decord VideoReader whose batches are read in ascending order (its least fragile pattern)."""

    def __init__(self, path: str, threads: int) -> None:
        import decord

        decord.logging.set_level(decord.logging.ERROR)
        self._reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=threads)

    def __len__(self) -> int:
        return len(self._reader)

    def get(self, indices: Sequence[int]) -> np.ndarray:
        """RGB uint8 [T, H, W, 3] full-resolution frames at sorted `indices`."""
        return self._reader.get_batch(list(indices)).asnumpy()

    def close(self) -> None:
        del self._reader


def verification_indices(num_frames: int, count: int) -> list[int]:
    """A backward, sparse pattern (last, first, middle, ...): the accesses decord gets wrong if it will."""
    candidates = [num_frames - 1, 0, num_frames // 2, num_frames // 4, (3 * num_frames) // 4]
    seen: list[int] = []
    for frame in candidates:
        if frame not in seen and 0 <= frame < num_frames:
            seen.append(frame)
    return seen[:count]
