"""The exact decode path (PyAV): keyframe seek + decode forward, GOPs decoded in parallel.

Requested frames are grouped into runs: a run starts with a seek to the keyframe at or before its first
frame and decodes forward through all of its frames; a frame whose keyframe lies beyond the previous
frame starts a new run (seeking there is never more work than decoding on). Runs are split into
contiguous chunks of about equal decode cost, one per worker thread, each with its own container
(FFmpeg decodes without the GIL). Only kept frames are converted to RGB and resized.

Frames are matched by PTS, so a decode is either exact or detected as wrong (IndexMismatch).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import numpy as np

from kangaroo.video.container import OpenLimits, open_container
from kangaroo.video.index import DecodeTimeout, FrameIndex, IndexMismatch, check_deadline

logger = logging.getLogger(__name__)

_INTRA = 1  # av.video.frame.PictureType.I
Converter = Callable[["object"], np.ndarray]  # av.VideoFrame -> RGB uint8 [h, w, 3]


def open_stream(path: str, decoder_threads: int, limits: OpenLimits):
    """Open `path` under `limits` (container.py) and return (container, first video stream) with
    threading configured."""
    container = open_container(path, limits)
    stream = container.streams.video[0]
    stream.thread_type = "AUTO" if decoder_threads != 1 else "SLICE"
    stream.thread_count = decoder_threads
    return container, stream


def plan_runs(index: FrameIndex, targets: Sequence[int]) -> list[tuple[int, list[int]]]:
    """Group sorted unique frame indices into (keyframe, frames) runs."""
    runs: list[tuple[int, list[int]]] = []
    for frame in targets:
        keyframe = index.keyframe_before(frame)
        if runs and keyframe <= runs[-1][1][-1]:
            runs[-1][1].append(frame)
        else:
            runs.append((keyframe, [frame]))
    return runs


def split_runs(runs: list[tuple[int, list[int]]], parts: int) -> list[list[tuple[int, list[int]]]]:
    """Contiguous chunks of runs with about equal decode cost (frames from keyframe to last target)."""
    costs = np.array([frames[-1] - keyframe + 1 for keyframe, frames in runs], np.float64)
    if parts <= 1 or len(runs) <= 1:
        return [runs]
    bounds = np.cumsum(costs) / costs.sum()
    chunks: list[list[tuple[int, list[int]]]] = [[] for _ in range(parts)]
    for run, cumulative, cost in zip(runs, bounds, costs, strict=True):
        middle = cumulative - cost / costs.sum() / 2
        chunks[min(int(middle * parts), parts - 1)].append(run)
    return [chunk for chunk in chunks if chunk]


class SeekFailed(Exception):
    """The demuxer refused a seek the packet index called for; the caller falls back to the exact
    sequential path (`decode_sequential`), which needs no seeking."""


def seek_to_keyframe(container, stream, keyframe_pts: int) -> None:
    """Seek to the keyframe at `keyframe_pts`; raises SeekFailed where the demuxer cannot (FFmpeg returns
    EPERM when, e.g., a Matroska file has neither Cues nor the index entries its clusters would give)."""
    import av

    try:
        container.seek(keyframe_pts, stream=stream, backward=True, any_frame=False)
    except av.FFmpegError as err:
        raise SeekFailed(f"seek to pts {keyframe_pts} refused: {err}") from err


def _prime_decoder(container, stream) -> None:
    """Decode the stream's first packet before any seek. Decoders keep state from the stream head that
    later keyframes do not repeat (FFmpeg's H.264 decoder reads the encoder's build from an SEI in the first
    access unit and enables bug workarounds from it; without it cockatoo.mp4 decodes green after a seek)."""
    for packet in container.demux(stream):
        if packet.size:
            packet.decode()
            break


def _decode_runs(
    path: str,
    index: FrameIndex,
    runs: list[tuple[int, list[int]]],
    convert: Converter,
    decoder_threads: int,
    deadline: float,
    limits: OpenLimits,
) -> dict[int, np.ndarray]:
    """Decode each run: seek to its keyframe, feed packets up to the last one a wanted frame needs (in
    decode order), skipping non-reference frames that are not wanted, then drain the decoder so the wanted
    frames come out without decoding the frames that follow them."""
    container, stream = open_stream(path, decoder_threads, limits)
    context = stream.codec_context
    out: dict[int, np.ndarray] = {}
    try:
        _prime_decoder(container, stream)
        for keyframe, frames in runs:
            wanted = {int(index.pts[frame]): frame for frame in frames}
            last_packet = max(int(index.decode_position[frame]) for frame in frames)
            keyframe_pts = int(index.pts[keyframe])
            seek_to_keyframe(container, stream, keyframe_pts)
            for packet in container.demux(stream):
                check_deadline(deadline)
                frame_index = index.frame_of_pts(packet.pts)
                # Non-reference frames nobody asked for are never needed to decode the wanted ones.
                context.skip_frame = "DEFAULT" if packet.pts in wanted else "NONREF"
                decoded = packet.decode()
                is_last = frame_index is not None and index.decode_position[frame_index] == last_packet
                if is_last or packet.size == 0:
                    decoded += context.decode(None)  # drain: the wanted frames leave the reorder buffer
                for frame in decoded:
                    if frame.pts == keyframe_pts and not (frame.key_frame or frame.pict_type == _INTRA):
                        # a container flagged a predicted frame as a keyframe (common in old AVIs)
                        raise IndexMismatch(
                            f"the keyframe at pts {keyframe_pts} decodes as a predicted frame"
                        )
                    if frame.pts in wanted:
                        if frame.is_corrupt:
                            raise IndexMismatch(
                                f"decoder flagged frame at pts {frame.pts} corrupt after a seek"
                            )
                        out[wanted.pop(frame.pts)] = convert(frame)
                if is_last or packet.size == 0 or not wanted:
                    break
            context.skip_frame = "DEFAULT"
            if wanted:
                raise IndexMismatch(f"frames {sorted(wanted.values())} not produced after seek")
    finally:
        container.close()
    return out


def decode_seek(
    path: str,
    index: FrameIndex,
    targets: Sequence[int],
    convert: Converter,
    *,
    workers: int,
    decoder_threads: int,
    deadline: float,
    limits: OpenLimits,
    min_frames_per_worker: int = 0,
) -> dict[int, np.ndarray]:
    """Decode sorted unique `targets` of a seekable file; returns {frame index: converted frame}.

    Extra workers are only used while each gets at least `min_frames_per_worker` frames to decode: a
    worker costs a container open and a priming decode, which dominate on short clips."""
    runs = plan_runs(index, targets)
    cost = sum(frames[-1] - keyframe + 1 for keyframe, frames in runs)
    workers = max(1, min(workers, cost // max(min_frames_per_worker, 1)))
    chunks = split_runs(runs, workers)
    if len(chunks) == 1:
        return _decode_runs(path, index, chunks[0], convert, decoder_threads, deadline, limits)
    out: dict[int, np.ndarray] = {}
    with ThreadPoolExecutor(len(chunks), thread_name_prefix="kangaroo-decode") as pool:
        futures = [
            pool.submit(_decode_runs, path, index, chunk, convert, decoder_threads, deadline, limits)
            for chunk in chunks
        ]
        for future in futures:
            try:
                out.update(future.result(timeout=max(deadline - time.monotonic(), 0.0) + 1.0))
            except FutureTimeout as err:
                raise DecodeTimeout from err
    return out


def decode_sequential(
    path: str,
    targets: Sequence[int],
    convert: Converter,
    *,
    decoder_threads: int,
    deadline: float,
    limits: OpenLimits,
) -> dict[int, np.ndarray]:
    """Decode from the start, keeping frames whose output ordinal is in `targets` (the reference path)."""
    wanted = set(int(frame) for frame in targets)
    last = max(wanted) if wanted else -1
    out: dict[int, np.ndarray] = {}
    container, stream = open_stream(path, decoder_threads, limits)
    try:
        for ordinal, frame in enumerate(container.decode(stream)):
            if ordinal % 16 == 0:
                check_deadline(deadline)
            if ordinal in wanted:
                out[ordinal] = convert(frame)
            if ordinal >= last:
                break
    finally:
        container.close()
    missing = wanted - out.keys()
    if missing:
        raise IndexMismatch(f"stream ended before frames {sorted(missing)[:5]}")
    return out


__all__ = [
    "DecodeTimeout",
    "SeekFailed",
    "decode_seek",
    "decode_sequential",
    "plan_runs",
    "seek_to_keyframe",
    "split_runs",
]
