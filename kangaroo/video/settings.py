"""Typed `video:` block of params.yaml."""

from typing import Literal

from pydantic import Field

from kangaroo.settings_base import Section

# FFmpeg demuxer names (any name of a multi-name demuxer such as "mov,mp4,m4a,3gp,3g2,mj2" matches).
DEFAULT_FORMATS = ("mov", "mp4", "matroska", "webm", "avi", "mpegts", "mpeg", "flv", "ogg", "asf")


class VideoSettings(Section):
    """How every consumer (curation, training, eval) decodes and samples video."""

    # auto: the exact PyAV path (measured faster than decord everywhere, see reader.py); decord: decord
    # where it passes verification against PyAV, else PyAV; pyav: never decord.
    backend: Literal["auto", "decord", "pyav"] = "auto"
    resize_policy: Literal["resize", "pad", "crop"] = "pad"
    decode_timeout_s: float = Field(120.0, gt=0)
    decode_workers: int = Field(2, ge=1)
    decoder_threads: int = Field(0, ge=0)
    min_frames_per_worker: int = Field(100, ge=0)
    decord_deny_list: bool = True
    verify_frames: int = Field(3, ge=1, le=3)
    verify_tolerance: float = Field(0.5, ge=0)
    # Untrusted media (kangaroo/video/container.py): the demuxers FFmpeg may pick, and header limits
    # checked before any frame is decoded.
    allowed_formats: tuple[str, ...] = DEFAULT_FORMATS
    max_pixels: int = Field(3840 * 2160, ge=1)
    max_frames: int = Field(2_000_000, ge=1)
    max_duration_s: float = Field(86400.0, gt=0)
    max_image_pixels: int = Field(50_000_000, ge=1)
