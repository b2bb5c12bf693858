"""`open_video()`: one verified reader per file, choosing the backend that is exact on that file.

Backend choice (`settings.backend`):

- ``pyav``: always the exact PyAV path (GOP-parallel seek decode when the container has a trustworthy
  packet index, otherwise a sequential decode).
- ``auto``: the exact PyAV path. Measured side by side (benchmarks/bench_video.py), it is faster than
  decord on every file tried: ~2x less CPU on seekable H.264 (non-reference frames skipped, nothing
  converted but the kept frames), and on AVI files decord's verification plus its own index cost more
  than PyAV's second pass. So decord is not worth its verification cost by default.
- ``decord``: decord wherever it passes verification, else PyAV (for hosts where decord is faster).

Verification = the codec is not on decord's deny-list, decord reports the same frame count, and its frames
at a sparse, backward pattern of indices equal PyAV's within `settings.verify_tolerance` (mean |diff|).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import TypeVar

import numpy as np

from kangaroo.video.container import OpenLimits, check_header, check_memory_budget, open_container
from kangaroo.video.decord_backend import DecordSource, deny_reason
from kangaroo.video.errors import OutOfMemoryError, VideoError
from kangaroo.video.frames import SampledFrames, apply_geometry, frame_geometry
from kangaroo.video.index import (
    DecodeTimeout,
    FrameIndex,
    IndexMismatch,
    index_from_decode,
    index_from_packets,
)
from kangaroo.video.pyav_decode import SeekFailed, decode_seek, decode_sequential
from kangaroo.video.sampling import fps_indices, indices_at, uniform_indices
from kangaroo.video.settings import VideoSettings

logger = logging.getLogger(__name__)
T = TypeVar("T")


def _is_url(path: str) -> bool:
    return "://" in path


class VideoReader:
    """A video opened and verified by `open_video`. Frame `i` is the i-th frame in presentation order."""

    def __init__(self, path: str | Path, settings: VideoSettings | None = None) -> None:
        self.path = str(path)
        self.settings = settings or VideoSettings()
        self._decord: DecordSource | None = None
        self.backend_reason = ""
        self._limits = OpenLimits.from_settings(self.settings)
        self._run(self._open, "opening")

    # -- opening -----------------------------------------------------------------------------------------
    def _open(self, deadline: float) -> None:
        import av

        if _is_url(self.path):
            raise VideoError(self.path, "unsupported", "only local files are decoded (download it first)")
        file = Path(self.path)
        if not file.is_file():
            raise VideoError(self.path, "missing", "no such file")
        if file.stat().st_size == 0:
            raise VideoError(self.path, "empty", "zero-byte file")
        try:
            container = open_container(self.path, self._limits)
        except av.ExitError as err:  # FFmpeg's interrupt callback fired: the open exceeded the timeout
            raise DecodeTimeout from err
        try:
            if not container.streams.video:
                raise VideoError(self.path, "no_video_stream", f"streams: {list(container.streams)}")
            stream = container.streams.video[0]
            context = stream.codec_context
            if context.codec is None or not context.name:
                raise VideoError(self.path, "unsupported", "no decoder for the video stream")
            check_header(self.path, container, stream, self.settings)
            check_memory_budget(self.path, stream, self.settings.decoder_threads)
            self.codec = context.name
            self.width, self.height = int(context.width), int(context.height)
            self._nominal_fps = float(stream.average_rate or stream.guessed_rate or 0.0)
            self._container_format = container.format.name
            profile = getattr(context, "profile", None)
            deny = deny_reason(self.codec, profile, bool(context.has_b_frames), self._container_format)
            index = index_from_packets(container, stream, deadline)
        except MemoryError as err:  # av.error.MemoryError too: the worker's memory limit was hit
            raise OutOfMemoryError(self.path, "out of memory while indexing") from err
        except av.FFmpegError as err:
            raise VideoError(self.path, "undecodable", str(err)) from err
        finally:
            container.close()
        probes: dict[int, np.ndarray] = {}
        if index is None:
            # Decode from a fresh open rather than rewinding this container: a file without a seek index
            # (Matroska without Cues or keyframe flags) refuses even seek(0) but decodes from the start.
            index, probes = self._reindex(deadline)
        if index.num_frames == 0 or self.width <= 0 or self.height <= 0:
            raise VideoError(self.path, "undecodable", "no decodable video frames")
        self._index = index
        if index.seekable:
            # Decoding frame 0 through the seek path proves the file decodes and the index matches.
            try:
                probes = self._decode_pyav([0], None, deadline)
            except (IndexMismatch, SeekFailed) as err:
                logger.info(
                    "%s: seek decode failed (%s); indexing by decode, reading sequentially", self.path, err
                )
                index, probes = self._reindex(deadline)
        self._choose_backend(deny, probes, deadline)

    def _reindex(self, deadline: float) -> tuple[FrameIndex, dict[int, np.ndarray]]:
        with open_container(self.path, self._limits) as container:
            self._index, probes = index_from_decode(container, container.streams.video[0], deadline)
        return self._index, probes

    def _choose_backend(self, deny: str | None, probes: dict[int, np.ndarray], deadline: float) -> None:
        self.backend = "pyav"
        wanted = self.settings.backend
        if wanted == "pyav":
            self.backend_reason = "pyav requested"
            return
        if wanted == "auto":
            self.backend_reason = "exact PyAV path (faster than decord on every benchmarked file)"
            return
        if deny is not None and self.settings.decord_deny_list:
            self.backend_reason = deny
            return
        try:
            source = DecordSource(self.path, self.settings.decoder_threads)
        except Exception as err:  # decord raises its own DECORDError or RuntimeError on unsupported files
            self.backend_reason = f"decord cannot open the file ({str(err).splitlines()[0][:120]})"
            return
        verdict = self._verify_decord(source, probes, deadline)
        if verdict is None:
            self._decord, self.backend = source, "decord"
            self.backend_reason = "decord verified against PyAV"
        else:
            source.close()
            self.backend_reason = verdict
            logger.warning("%s: decord not used: %s", self.path, verdict)

    def _verify_decord(
        self, source: DecordSource, probes: dict[int, np.ndarray], deadline: float
    ) -> str | None:
        """None if decord agrees with PyAV at the probe frames (read one by one, backward), else why not."""
        if len(source) != self.num_frames:
            return f"decord counts {len(source)} frames, PyAV {self.num_frames}"
        from kangaroo.video.index import probe_ordinals

        ordinals = probe_ordinals(self.num_frames)[: self.settings.verify_frames]
        missing = [frame for frame in ordinals if frame not in probes]
        if missing:
            probes = {**probes, **self._decode_pyav(sorted(missing), None, deadline)}
        for frame in ordinals:
            theirs = source.get([frame])[0]
            if theirs.shape != probes[frame].shape:
                return f"decord frame {frame} has shape {theirs.shape}, PyAV {probes[frame].shape}"
            diff = float(np.abs(theirs.astype(np.int16) - probes[frame]).mean())
            if diff > self.settings.verify_tolerance:
                return f"decord frame {frame} differs from PyAV's (mean |diff| {diff:.2f})"
        return None

    # -- decoding ----------------------------------------------------------------------------------------
    def _run(self, work: Callable[[float], T], what: str) -> T:
        """Run `work(deadline)` under the decode timeout; every failure becomes a VideoError."""
        import av

        timeout = self.settings.decode_timeout_s
        deadline = time.monotonic() + timeout
        # No `with`: its exit would join a hung worker. The worker also checks the deadline between packets,
        # so an abandoned one stops soon after.
        pool = ThreadPoolExecutor(1, thread_name_prefix="kangaroo-video")
        future = pool.submit(work, deadline)
        try:
            return future.result(timeout=timeout + 1.0)
        except (FutureTimeout, DecodeTimeout, av.ExitError) as err:
            raise VideoError(self.path, "timeout", f"{what} took longer than {timeout:g} s") from err
        except VideoError:
            raise
        except MemoryError as err:  # the worker's memory limit (or av.error.MemoryError, ENOMEM) was hit
            raise OutOfMemoryError(self.path, f"{what}: out of memory") from err
        except BlockingIOError as err:  # EAGAIN from avcodec_open2: no memory left for decoder threads
            raise OutOfMemoryError(self.path, f"{what}: cannot start decoder threads ({err})") from err
        except (av.FFmpegError, IndexMismatch) as err:
            raise VideoError(self.path, "undecodable", f"{what}: {err}") from err
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _decode_pyav(self, targets: Sequence[int], geometry, deadline: float) -> dict[int, np.ndarray]:
        def convert(frame) -> np.ndarray:
            rgb = frame.to_ndarray(format="rgb24")
            return rgb if geometry is None else apply_geometry(rgb, geometry)

        options = dict(
            decoder_threads=self.settings.decoder_threads,
            deadline=deadline,
            limits=self._limits,
        )
        if self._index.seekable:
            return decode_seek(
                self.path, self._index, targets, convert, workers=self.settings.decode_workers,
                min_frames_per_worker=self.settings.min_frames_per_worker, **options,
            )  # fmt: skip
        return decode_sequential(self.path, targets, convert, **options)

    def _read(self, indices: np.ndarray, size: int | None, policy: str | None) -> SampledFrames:
        geometry = frame_geometry(self.width, self.height, size, policy or self.settings.resize_policy)
        targets = sorted(set(int(frame) for frame in indices))

        def work(deadline: float) -> dict[int, np.ndarray]:
            if self._decord is not None:
                try:
                    batch = self._decord.get(targets)
                except Exception as err:  # decord raises DECORDError/RuntimeError on streams it cannot read
                    raise VideoError(self.path, "undecodable", f"decord: {str(err).splitlines()[0]}") from err
                return {
                    frame: apply_geometry(rgb, geometry) for frame, rgb in zip(targets, batch, strict=True)
                }
            try:
                return self._decode_pyav(targets, geometry, deadline)
            except (IndexMismatch, SeekFailed) as err:
                logger.warning(
                    "%s: seek decode mismatch (%s); falling back to sequential decode", self.path, err
                )
                self._reindex(deadline)
                return self._decode_pyav(targets, geometry, deadline)

        decoded = self._run(work, f"decoding {len(targets)} frames")
        frames = np.stack([decoded[int(frame)] for frame in indices])
        return SampledFrames(frames, self._index.timestamps[indices].copy(), np.asarray(indices, np.int64))

    # -- public API ---------------------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return self._index.num_frames

    @property
    def timestamps(self) -> np.ndarray:
        """Presentation time of every frame in seconds (float64 [N]), correct for variable frame rate."""
        return self._index.timestamps

    @property
    def duration(self) -> float:
        """Seconds from time 0 to the end of the last frame."""
        stamps = self._index.timestamps
        interval = float(np.median(np.diff(stamps))) if len(stamps) > 1 else 0.0
        return float(stamps[-1] + interval)

    @property
    def fps(self) -> float:
        """Average frame rate over the video (frames per second); the container's nominal rate for a single
        frame."""
        span = self.duration - float(self._index.timestamps[0])
        return self.num_frames / span if span > 0 else self._nominal_fps

    def sample_uniform(
        self, num_frames: int, size: int | None = None, policy: str | None = None
    ) -> SampledFrames:
        """`min(num_frames, self.num_frames)` frames at the centres of equal segments of the video."""
        return self._read(uniform_indices(self.num_frames, num_frames), size, policy)

    def sample_fps(
        self, fps: float, max_frames: int, size: int | None = None, policy: str | None = None
    ) -> SampledFrames:
        """Kangaroo's dynamic sampling: a frame every 1/fps s while that is at most `max_frames` frames,
        otherwise `max_frames` frames spread uniformly over the whole video."""
        return self._read(fps_indices(self.timestamps, self.duration, fps, max_frames), size, policy)

    def sample_at(
        self, times: Sequence[float], size: int | None = None, policy: str | None = None
    ) -> SampledFrames:
        """For each time (seconds), the frame presented at or before it (repeats allowed, order kept)."""
        if len(times) == 0:
            raise ValueError("sample_at needs at least one time")
        return self._read(indices_at(self.timestamps, times), size, policy)

    def close(self) -> None:
        """Release decoder resources (PyAV containers are opened per read and already closed)."""
        if self._decord is not None:
            self._decord.close()
            self._decord = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"VideoReader({self.path!r}, {self.codec}, {self.width}x{self.height}, {self.num_frames} frames, "
            f"{self.duration:.2f} s, backend={self.backend})"
        )


def open_video(path: str | Path, settings: VideoSettings | None = None) -> VideoReader:
    """Open and verify a video (context manager). Raises VideoError naming the file and the cause."""
    return VideoReader(path, settings)
