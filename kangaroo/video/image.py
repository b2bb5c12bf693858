"""Still images as one-frame clips, so image-text pre-training reads images through the video path.

Images are untrusted too: only common still formats are opened, and the pixel count from the header is
checked against `video.max_image_pixels` before anything is decoded, so a decompression bomb (a few KB of
PNG that inflate to gigabytes) raises ResourceLimitError instead of exhausting memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kangaroo.video.errors import ResourceLimitError, VideoError
from kangaroo.video.frames import SampledFrames, apply_geometry, frame_geometry

IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")


def read_image(
    path: str | Path, size: int | None = None, policy: str | None = None, max_pixels: int | None = None
) -> SampledFrames:
    """An image as a 1-frame clip at t = 0.0 (frames uint8 [1, H, W, 3] RGB); `policy` defaults to "pad"
    and `max_pixels` to `video.max_image_pixels`. Raises ResourceLimitError for an image larger than that,
    VideoError naming the file and the cause for any other unreadable file."""
    from PIL import Image, UnidentifiedImageError

    from kangaroo.video.settings import VideoSettings

    defaults = VideoSettings()
    max_pixels = max_pixels or defaults.max_image_pixels
    file = Path(path)
    if not file.is_file():
        raise VideoError(file, "missing", "no such file")
    if file.stat().st_size == 0:
        raise VideoError(file, "empty", "zero-byte file")
    try:
        with Image.open(file, formats=IMAGE_FORMATS) as image:
            width, height = image.size  # from the header: nothing is decoded yet
            if width * height > max_pixels:
                raise ResourceLimitError(
                    file, f"{width}x{height} image ({width * height:,} pixels) exceeds {max_pixels:,}"
                )
            rgb = np.asarray(image.convert("RGB"))
    except Image.DecompressionBombError as err:  # PIL's own cap, should ours be set above it
        raise ResourceLimitError(file, str(err)) from err
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise VideoError(file, "corrupt", f"not a readable image: {err}") from err
    frame = apply_geometry(
        rgb, frame_geometry(rgb.shape[1], rgb.shape[0], size, policy or defaults.resize_policy)
    )
    return SampledFrames(frame[None], np.zeros(1, np.float64), np.zeros(1, np.int64))
