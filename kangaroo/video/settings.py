"""Typed `video:` block of params.yaml."""

from typing import Literal

from pydantic import Field

from kangaroo.settings_base import Section

# FFmpeg demuxer names (any name of a multi-name demuxer such as "mov,mp4,m4a,3gp,3g2,mj2" matches).
DEFAULT_FORMATS = ("mov", "mp4", "matroska", "webm", "avi", "mpegts", "mpeg", "flv", "ogg", "asf")


class VideoSettings(Section):
    """How every consumer (curation, training, eval) decodes and samples video."""

    # auto: the exact PyAV path (GOP-parallel keyframe seeks; measured faster than decord on every benchmarked
    # file, see reader.py); decord: decord where it passes verification against PyAV; pyav: never decord.
    backend: Literal["auto", "decord", "pyav"] = "auto"
    # resize (short side = size) | pad (letterbox to size x size) | crop (centre square)
    resize_policy: Literal["resize", "pad", "crop"] = "pad"
    # Sampling a 10-min 720p file takes ~5 s here: only pathological files (endless streams, stuck I/O)
    # reach 120 s.
    decode_timeout_s: float = Field(120.0, gt=0)
    decode_workers: int = Field(2, ge=1)  # parallel GOP decoders, one per core of a 2-core machine
    # FFmpeg frame threads per decoder, 0 = auto: no GIL, so they keep cores busy on a shared machine.
    decoder_threads: int = Field(0, ge=0)
    # A worker costs a container open + a keyframe decode (~20 ms at 720p): split only when each gets
    # >= ~100 ms of decoding (short clips stay on one worker).
    min_frames_per_worker: int = Field(100, ge=0)
    decord_deny_list: bool = True  # skip decord on codecs known to misbehave
    verify_frames: int = Field(
        3, ge=1, le=3
    )  # decord frames compared with PyAV on open (last, first, middle)
    verify_tolerance: float = Field(0.5, ge=0)  # mean |diff| allowed; agreeing decodes give 0.0
    # Untrusted media (kangaroo/video/container.py, docs/security.md): the demuxers FFmpeg may pick (no
    # hls/concat/image2: they open other files), and header limits checked before any frame is decoded (over
    # them: `rejected: resource_limit`).
    allowed_formats: tuple[str, ...] = DEFAULT_FORMATS
    max_pixels: int = Field(3840 * 2160, ge=1)  # an 8192 x 8192 H.264 "pixel bomb" is refused from its header
    max_frames: int = Field(
        2_000_000, ge=1
    )  # ~18 h at 30 fps: a longer stream's index is not worth its memory
    max_duration_s: float = Field(86400.0, gt=0)
    max_image_pixels: int = Field(50_000_000, ge=1)  # stills: a few-KB PNG can claim 20000 x 20000
