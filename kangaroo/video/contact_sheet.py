"""A contact sheet: the sampled frames in a grid, each with its timestamp printed under it, so a person can
see exactly what the model will see."""

from __future__ import annotations

import math

import cv2
import numpy as np

from kangaroo.video.frames import SampledFrames

_LABEL_HEIGHT = 22


def contact_sheet(clip: SampledFrames, columns: int = 8, thumb_width: int = 192) -> np.ndarray:
    """RGB uint8 image: frames scaled to `thumb_width` wide, `columns` per row, "t=1.234s #idx" under each."""
    count, height, width = clip.frames.shape[:3]
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    thumb_height = max(1, round(height * thumb_width / width))
    cell_height = thumb_height + _LABEL_HEIGHT
    sheet = np.full((rows * cell_height, columns * thumb_width, 3), 255, np.uint8)
    for position, (frame, seconds, index) in enumerate(
        zip(clip.frames, clip.timestamps, clip.indices, strict=True)
    ):
        row, column = divmod(position, columns)
        y, x = row * cell_height, column * thumb_width
        sheet[y : y + thumb_height, x : x + thumb_width] = cv2.resize(
            frame, (thumb_width, thumb_height), interpolation=cv2.INTER_AREA
        )
        label = f"t={seconds:.3f}s #{index}"
        cv2.putText(
            sheet,
            label,
            (x + 4, y + thumb_height + 16),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    return sheet


def write_contact_sheet(clip: SampledFrames, path, columns: int = 8, thumb_width: int = 192) -> None:
    """Write `contact_sheet(clip)` as PNG/JPEG (by extension)."""
    image = contact_sheet(clip, columns, thumb_width)
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write contact sheet {path}")
