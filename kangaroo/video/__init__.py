"""Frame-exact, fast video sampling with real timestamps (decord fast path, PyAV exact path).

    from kangaroo.video import open_video
    with open_video("clip.mp4") as video:
        clip = video.sample_fps(fps=1.0, max_frames=64, size=448)   # SampledFrames
        clip.frames, clip.timestamps                                 # uint8 [T,H,W,3], seconds

Names resolve lazily so that `kangaroo --help` does not import NumPy, OpenCV or PyAV.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kangaroo.video.errors import VideoError
    from kangaroo.video.frames import SampledFrames, frame_geometry
    from kangaroo.video.image import read_image
    from kangaroo.video.reader import VideoReader, open_video
    from kangaroo.video.settings import VideoSettings

_EXPORTS = {
    "VideoError": "kangaroo.video.errors",
    "SampledFrames": "kangaroo.video.frames",
    "frame_geometry": "kangaroo.video.frames",
    "read_image": "kangaroo.video.image",
    "VideoReader": "kangaroo.video.reader",
    "open_video": "kangaroo.video.reader",
    "VideoSettings": "kangaroo.video.settings",
}
__all__ = [
    "SampledFrames",
    "VideoError",
    "VideoReader",
    "VideoSettings",
    "frame_geometry",
    "open_video",
    "read_image",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'kangaroo.video' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
