"""Frame-exact, fast video sampling with real timestamps (decord fast path, PyAV exact path).

from kangaroo.video import open_video
with open_video("clip.mp4") as video:
    clip = video.sample_fps(fps=1.0, max_frames=64, size=448)   # SampledFrames
    clip.frames, clip.timestamps                                 # uint8 [T,H,W,3], seconds
"""

from kangaroo.video.errors import VideoError
from kangaroo.video.frames import SampledFrames, frame_geometry
from kangaroo.video.image import read_image
from kangaroo.video.reader import VideoReader, open_video
from kangaroo.video.settings import VideoSettings

__all__ = [
    "SampledFrames",
    "VideoError",
    "VideoReader",
    "VideoSettings",
    "frame_geometry",
    "open_video",
    "read_image",
]
