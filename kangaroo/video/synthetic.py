"""Index-coded synthetic clips: every frame carries its own index as a visible bar code, so a test or a
benchmark can check frame exactness by reading the picture, independently of any decoder's bookkeeping.

Layout of a frame: a textured, moving background (so the encoder produces real P/B residuals rather than
skip blocks) and, across the top band, `INDEX_BITS` black/white cells that spell the frame index in binary.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

INDEX_BITS = 16
_BAND_FRACTION = 8  # the code band is the top 1/8 of the frame: big cells survive lossy coding and scaling


def index_frame(index: int, width: int, height: int, texture: np.ndarray | None = None) -> np.ndarray:
    """RGB uint8 frame [H, W, 3] whose top band encodes `index`; `texture` (H x 2W x 3) scrolls with it."""
    if texture is None:
        frame = np.empty((height, width, 3), np.uint8)
        frame[..., 0] = (index * 37) % 256
        frame[..., 1] = (index * 91) % 256
        frame[..., 2] = 128
    else:
        offset = (index * 7) % width
        frame = np.ascontiguousarray(texture[:height, offset : offset + width])
    band = max(height // _BAND_FRACTION, 2)
    cell = width // INDEX_BITS
    for bit in range(INDEX_BITS):
        value = 255 if (index >> bit) & 1 else 0
        frame[:band, bit * cell : (bit + 1) * cell] = value
    return frame


def read_frame_index(frame: np.ndarray) -> int:
    """Decode the index written by `index_frame` from an RGB frame of any size (cells are read at centres)."""
    height, width = frame.shape[:2]
    band = max(height // _BAND_FRACTION, 2)
    cell = width / INDEX_BITS
    row = band // 2
    index = 0
    for bit in range(INDEX_BITS):
        column = int((bit + 0.5) * cell)
        if frame[row, column].mean() > 127:
            index |= 1 << bit
    return index


def make_texture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Smooth random texture (H x 2W x 3) with enough detail that P/B frames carry real residuals."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(max(height // 8, 1), max(2 * width // 8, 1), 3), dtype=np.uint8)
    import cv2

    return cv2.resize(coarse, (2 * width, height), interpolation=cv2.INTER_CUBIC)


def write_index_clip(
    path: str | Path,
    num_frames: int,
    *,
    fps: float = 25.0,
    width: int = 160,
    height: int = 96,
    codec: str = "libx264",
    gop: int = 25,
    bframes: int = 2,
    frame_times: Sequence[float] | None = None,
    textured: bool = False,
    options: dict[str, str] | None = None,
) -> Path:
    """Encode an index-coded clip with PyAV.

    `frame_times` (seconds, increasing) gives explicit presentation times for a variable-frame-rate clip;
    otherwise frames are spaced 1/fps. `gop` is the keyframe interval in frames (scene-cut detection off, so
    keyframes land exactly there), `bframes` the number of consecutive B-frames for x264/x265.
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    time_base = Fraction(1, 90000) if frame_times is not None else 1 / rate
    texture = make_texture(width, height) if textured else None
    codec_options = dict(options or {})
    if codec in ("libx264", "libx265"):
        params = f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}"
        codec_options.setdefault("x264-params" if codec == "libx264" else "x265-params", params)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        stream.codec_context.gop_size = gop
        if codec not in ("libx264", "libx265"):
            stream.codec_context.max_b_frames = bframes
        stream.options = codec_options
        for index in range(num_frames):
            frame = av.VideoFrame.from_ndarray(index_frame(index, width, height, texture), format="rgb24")
            if frame_times is not None:
                frame.pts = round(frame_times[index] / time_base)
            else:
                frame.pts = index
            frame.time_base = time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path
