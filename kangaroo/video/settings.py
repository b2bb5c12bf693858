"""Typed `video:` block of params.yaml."""

from typing import Literal

from pydantic import Field

from kangaroo.settings_base import Section


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
