"""Open untrusted media with FFmpeg so that it reads only the file it was given, within header limits.

Every PyAV open of an input (probe, index, decode) goes through `open_container`:

- `protocol_whitelist=file`: FFmpeg opens local files only; no http/tcp, and no nested protocols
  (`concat:`, `subfile:`, `data:`, `crypto:`), whatever the path or the file's contents say;
- `format_whitelist`: the demuxer FFmpeg probes from the bytes must be on `video.allowed_formats`.
  Demuxers that open *other* files (HLS playlists, concat lists, image sequences) are refused before they
  read a header, so an uploaded `.m3u8` naming `/etc/...` or another user's clip is never decoded;
  MOV external data references stay off (`enable_drefs=0`, FFmpeg's default, pinned here);
- `max_pixels` as a decoder option, both for the probe (`avformat_find_stream_info` decodes frames) and
  for every later decode: a frame above the cap fails in the decoder instead of allocating gigabytes.

`check_header` then refuses, before any frame is decoded, a stream whose header announces more pixels per
frame, frames or seconds than the limits (ResourceLimitError -> `rejected: resource_limit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kangaroo.process_memory import data_limit_bytes, data_segment_bytes
from kangaroo.video.errors import ResourceLimitError, VideoError
from kangaroo.video.settings import VideoSettings

ALLOWED_PROTOCOLS = "file"


@dataclass(frozen=True)
class OpenLimits:
    """What `open_container` allows: demuxers, pixels per frame, and the open timeout."""

    formats: tuple[str, ...]
    max_pixels: int
    timeout_s: float

    @classmethod
    def from_settings(cls, settings: VideoSettings) -> OpenLimits:
        return cls(tuple(settings.allowed_formats), settings.max_pixels, settings.decode_timeout_s)

    def container_options(self) -> dict[str, str]:
        return {
            "protocol_whitelist": ALLOWED_PROTOCOLS,
            "format_whitelist": ",".join(self.formats),
            "enable_drefs": "0",
        }

    def decoder_options(self) -> dict[str, str]:
        return {"max_pixels": str(self.max_pixels)}


def format_allowed(format_name: str, formats: tuple[str, ...]) -> bool:
    """True if any name of the (possibly multi-name) demuxer is on the allow-list."""
    return bool(set(format_name.split(",")) & set(formats))


def open_container(path: str | Path, limits: OpenLimits):
    """`av.open` of a local file under `limits`; VideoError (naming the file) if FFmpeg refuses it.

    av.ExitError (the open timed out) is left to the caller's deadline handling."""
    import av

    local = str(Path(path).absolute())
    try:
        container = av.open(
            local,
            container_options=limits.container_options(),
            options=limits.decoder_options(),
            timeout=limits.timeout_s,
        )
    except FileNotFoundError as err:
        raise VideoError(path, "missing", str(err)) from err
    except av.ExitError:
        raise
    except av.ArgumentError as err:
        # What FFmpeg answers when the probed demuxer is not on format_whitelist (or a frame is over
        # max_pixels while probing): the demuxer never read the file's header.
        raise VideoError(
            path, "corrupt", f"not a video in an allowed container ({', '.join(limits.formats)}): {err}"
        ) from err
    except av.FFmpegError as err:
        raise VideoError(path, "corrupt", f"cannot open: {err}") from err
    if not format_allowed(container.format.name, limits.formats):  # FFmpeg honoured the list; check anyway
        container.close()
        raise VideoError(path, "unsupported", f"container format {container.format.name!r} is not allowed")
    for stream in container.streams.video:
        if stream.codec_context is not None:
            stream.codec_context.options = {**stream.codec_context.options, **limits.decoder_options()}
    return container


def check_header(path: str | Path, container, stream, settings: VideoSettings) -> None:
    """ResourceLimitError if the header announces frames larger, or a stream longer, than the limits."""
    context = stream.codec_context
    pixels = int(context.width) * int(context.height)
    if pixels > settings.max_pixels:
        raise ResourceLimitError(
            path,
            f"{context.width}x{context.height} frames ({pixels:,} pixels) exceed video.max_pixels "
            f"{settings.max_pixels:,}",
        )
    if stream.frames and stream.frames > settings.max_frames:
        raise ResourceLimitError(
            path, f"{stream.frames:,} frames exceed video.max_frames {settings.max_frames:,}"
        )
    seconds = header_duration(container, stream)
    if seconds is not None and seconds > settings.max_duration_s:
        raise ResourceLimitError(
            path, f"{seconds:,.0f} s exceed video.max_duration_s {settings.max_duration_s:,.0f}"
        )


def header_duration(container, stream) -> float | None:
    """Seconds the stream (else the container) header announces, or None if it says nothing."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def decode_memory_estimate(width: int, height: int, reorder_frames: int, threads: int) -> int:
    """Bytes a decode of this stream needs on top of the process: the decoder's live frames (references +
    reorder delay + one per frame thread, 4:2:0 at 1.5 bytes/pixel) and one RGB conversion (3 bytes/pixel)."""
    pixels = width * height
    return int(pixels * (1.5 * (reorder_frames + 2 + threads) + 3))


def check_memory_budget(path: str | Path, stream, decoder_threads: int) -> None:
    """ResourceLimitError if decoding `stream` cannot fit under this process's RLIMIT_DATA (the curation
    worker's memory limit; no limit, no check). Refusing from the header makes the outcome the same on
    every machine, where running into the limit mid-decode surfaces as whatever error FFmpeg reports."""
    import os

    limit = data_limit_bytes()
    if limit is None:
        return
    context = stream.codec_context
    threads = decoder_threads or min(os.cpu_count() or 1, 16) + 1  # FFmpeg's auto: cores + 1, at most 16
    need = decode_memory_estimate(int(context.width), int(context.height), int(context.has_b_frames), threads)
    used = data_segment_bytes()
    if used + need > limit:
        raise ResourceLimitError(
            path,
            f"decoding {context.width}x{context.height} frames needs ~{need >> 20} MiB, "
            f"{(limit - used) >> 20} MiB left under the worker's memory limit of {limit >> 20} MiB",
        )
