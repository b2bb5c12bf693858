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


class _Pipe:
    """A write-only, non-seekable file object: what FFmpeg sees when a recorder streams to a pipe."""

    def __init__(self, handle) -> None:
        self.handle = handle

    def write(self, data: bytes) -> int:
        return self.handle.write(data)

    def seekable(self) -> bool:
        return False


def write_matroska_without_seek_index(path: Path, num_frames: int, fps: int = 25) -> Path:
    """An index-coded H.264 Matroska file without any seek index, as a streaming remuxer writes one: muxed to
    a pipe (so no Cues) from packets that carry no keyframe flag (so demuxing builds no index either).
    FFmpeg decodes it front to back; it refuses every seek, even to 0 ("Operation not permitted")."""
    from kangaroo.video.synthetic import index_frame

    with path.open("wb") as handle, av.open(_Pipe(handle), "w", format="matroska") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 192, 128, "yuv420p"
        stream.options = {"x264-params": f"keyint={fps}:min-keyint={fps}:scenecut=0:bframes=2"}

        def mux(packets) -> None:
            for packet in packets:
                packet.is_keyframe = False
                container.mux(packet)

        for index in range(num_frames):
            mux(stream.encode(av.VideoFrame.from_ndarray(index_frame(index, 192, 128), format="rgb24")))
        mux(stream.encode(None))
    return path


def remux_without_seek_index(source: Path, out: Path) -> Path:
    """`source`'s video stream remuxed into Matroska the same way (to a pipe, keyframe flags dropped)."""
    with av.open(str(source)) as inp, out.open("wb") as handle:
        with av.open(_Pipe(handle), "w", format="matroska") as container:
            stream = container.add_stream_from_template(inp.streams.video[0])
            for packet in inp.demux(inp.streams.video[0]):
                if packet.dts is None:
                    continue  # the demuxer's end-of-stream flush packet
                packet.stream, packet.is_keyframe = stream, False
                container.mux(packet)
    return out
