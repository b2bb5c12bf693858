"""Still images as one-frame clips, so image-text pre-training reads images through the video path."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kangaroo.video.errors import VideoError
from kangaroo.video.frames import SampledFrames, apply_geometry, frame_geometry


def read_image(path: str | Path, size: int | None = None, policy: str | None = None) -> SampledFrames:
    """An image as a 1-frame clip at t = 0.0 (frames uint8 [1, H, W, 3] RGB); `policy` defaults to "pad".
    Raises VideoError naming the file and the cause."""
    from PIL import Image, UnidentifiedImageError

    file = Path(path)
    if not file.is_file():
        raise VideoError(file, "missing", "no such file")
    if file.stat().st_size == 0:
        raise VideoError(file, "empty", "zero-byte file")
    try:
        with Image.open(file) as image:
            rgb = np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise VideoError(file, "corrupt", f"not a readable image: {err}") from err
    if policy is None:
        from kangaroo.video.settings import VideoSettings

        policy = VideoSettings().resize_policy
    frame = apply_geometry(rgb, frame_geometry(rgb.shape[1], rgb.shape[0], size, policy))
    return SampledFrames(frame[None], np.zeros(1, np.float64), np.zeros(1, np.int64))
