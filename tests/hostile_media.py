"""Real hostile inputs for the untrusted-media tests, each made the way an attacker would make it.

- `write_playlist`: an HLS playlist (any file name) whose one entry is the absolute path of another file;
- `write_concat_list`: the same through FFmpeg's concat demuxer;
- `write_pixel_bomb`: a ~200 KB H.264 file of 8192 x 8192 frames (each decodes to ~100 MB, ~200 MB as RGB);
- `write_png_bomb`: a ~50 KB PNG that claims 20000 x 20000 pixels (400 MB once decoded);
- `write_moving_clip`: a clip curation keeps (moving square, no text, no faces), to mix with the above.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import av
import numpy as np


def write_moving_clip(
    path: Path, width: int = 160, height: int = 120, seconds: float = 2.0, fps: int = 10, color=(220, 60, 40)
) -> Path:
    """A square moving left to right over a grey background (H.264 in MP4)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    side = height // 3
    frames = int(seconds * fps)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for i in range(frames):
            image = np.full((height, width, 3), 90, np.uint8)
            x = int((width - side) * i / max(frames - 1, 1))
            image[height // 3 : height // 3 + side, x : x + side] = color
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def write_pixel_bomb(path: Path, side: int = 8192, frames: int = 2) -> Path:
    """An H.264 file of `side` x `side` black frames: tiny on disk, gigantic once decoded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = side
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast"}
        stream.thread_count = 1
        planes = np.zeros((side * 3 // 2, side), np.uint8)
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def write_playlist(path: Path, target: Path) -> Path:
    """An HLS playlist whose only segment is `target` (an absolute path elsewhere on the machine)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:10.0,\n{target.resolve()}\n#EXT-X-ENDLIST\n"
    )
    return path


def write_concat_list(path: Path, target: Path) -> Path:
    """An FFmpeg concat-demuxer script that splices in `target`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"ffconcat version 1.0\nfile '{target.resolve()}'\n")
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png_bomb(path: Path, side: int = 20000) -> Path:
    """A valid 1-bit greyscale PNG of `side` x `side` zero pixels, zlib-compressed row by row (the file is
    ~1/1000 of the raw size; decoded to RGB it is side * side * 3 bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    row = b"\x00" + bytes((side + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    chunks = [compressor.compress(row) for _ in range(side)]
    data = b"".join(chunks) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )
    return path
