"""Sampled frames with their real timestamps, and the resize/pad/crop geometry applied to each kept frame.

Size policies (`size` is in pixels; `None` keeps the native resolution):

- ``resize``: keep the aspect ratio; the *short* side becomes `size` (output `size x round(long*size/short)`).
- ``pad``: keep the aspect ratio; the *long* side becomes `size` and the frame is centred on a black
  `size x size` canvas (letterbox/pillarbox).
- ``crop``: take the centred square of side `min(H, W)` and scale it to `size x size`.

Shrinking uses `cv2.INTER_AREA` (the anti-aliased choice); enlarging uses `cv2.INTER_LINEAR`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

if TYPE_CHECKING:
    import torch

ResizePolicy = Literal["resize", "pad", "crop"]
POLICIES: tuple[str, ...] = ("resize", "pad", "crop")


@dataclass(frozen=True)
class SampledFrames:
    """Frames kept from a video, in the order requested.

    frames: uint8 [T, H, W, 3] RGB; timestamps: float64 [T] real presentation times in seconds;
    indices: int64 [T] positions of the frames in the stream's presentation order.
    """

    frames: np.ndarray
    timestamps: np.ndarray
    indices: np.ndarray

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def to_torch(self) -> torch.Tensor:
        """uint8 tensor [T, 3, H, W] (channels first, not normalised: the model's processor scales it)."""
        import torch

        return torch.from_numpy(np.ascontiguousarray(self.frames.transpose(0, 3, 1, 2)))


@dataclass(frozen=True)
class FrameGeometry:
    """What to do with one native frame: crop box (x0, y0, x1, y1), scaled size, then paste offset."""

    crop: tuple[int, int, int, int]
    scaled: tuple[int, int]  # (width, height) after scaling the crop
    canvas: tuple[int, int]  # (width, height) of the output
    offset: tuple[int, int]  # (x, y) where the scaled crop is pasted on the canvas

    @property
    def identity(self) -> bool:
        x0, y0, x1, y1 = self.crop
        return self.scaled == (x1 - x0, y1 - y0) and self.canvas == self.scaled


def frame_geometry(width: int, height: int, size: int | None, policy: str) -> FrameGeometry:
    """Geometry for a `width x height` frame under `policy` (see the module docstring)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown resize policy {policy!r}; use one of {POLICIES}")
    full = (0, 0, width, height)
    if size is None:
        return FrameGeometry(full, (width, height), (width, height), (0, 0))
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    if policy == "resize":
        scale = size / min(width, height)
        scaled = (max(round(width * scale), 1), max(round(height * scale), 1))
        return FrameGeometry(full, scaled, scaled, (0, 0))
    if policy == "crop":
        side = min(width, height)
        x0, y0 = (width - side) // 2, (height - side) // 2
        return FrameGeometry((x0, y0, x0 + side, y0 + side), (size, size), (size, size), (0, 0))
    scale = size / max(width, height)
    scaled = (max(round(width * scale), 1), max(round(height * scale), 1))
    offset = ((size - scaled[0]) // 2, (size - scaled[1]) // 2)
    return FrameGeometry(full, scaled, (size, size), offset)


def apply_geometry(rgb: np.ndarray, geometry: FrameGeometry) -> np.ndarray:
    """Crop, scale and pad one RGB uint8 frame [H, W, 3]."""
    if geometry.identity:
        return rgb
    x0, y0, x1, y1 = geometry.crop
    region = rgb[y0:y1, x0:x1]
    if geometry.scaled != (x1 - x0, y1 - y0):
        shrinking = geometry.scaled[0] * geometry.scaled[1] < region.shape[0] * region.shape[1]
        interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        region = cv2.resize(region, geometry.scaled, interpolation=interpolation)
    if geometry.canvas == geometry.scaled:
        return np.ascontiguousarray(region)
    canvas = np.zeros((geometry.canvas[1], geometry.canvas[0], 3), np.uint8)
    x, y = geometry.offset
    canvas[y : y + region.shape[0], x : x + region.shape[1]] = region
    return canvas
