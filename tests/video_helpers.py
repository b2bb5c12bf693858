"""Shared helpers for the video tests: generated clips and an independent sequential reference decode."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import av
import numpy as np


class Reference:
    """Plain PyAV decode of the first video stream, front to back (the ground truth).

    `count` is the number of frames; `frames[i]` holds RGB frame i for every i in `keep` (all by default;
    pass `keep` for large files: 720p RGB is 2.7 MB a frame)."""

    def __init__(self, path: str | Path, keep: Iterable[int] | None = None) -> None:
        wanted = None if keep is None else {int(i) for i in keep}
        self.frames: dict[int, np.ndarray] = {}
        self.pts: list[int | None] = []
        with av.open(str(path)) as container:
            for ordinal, frame in enumerate(container.decode(video=0)):
                self.pts.append(frame.pts)
                if wanted is None or ordinal in wanted:
                    self.frames[ordinal] = frame.to_ndarray(format="rgb24")
        self.count = len(self.pts)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> np.ndarray:
        return self.frames[int(index)]


def reference_frames(
    path: str | Path, keep: Iterable[int] | None = None
) -> tuple[Reference, list[int | None]]:
    reference = Reference(path, keep)
    return reference, reference.pts


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())
