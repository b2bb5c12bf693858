"""Typed `video:` block of params.yaml."""

from typing import Literal

from pydantic import Field

from kangaroo.settings_base import Section


class VideoSettings(Section):
    """How every consumer (curation, training, eval) decodes and samples video."""

    # auto: exact PyAV seek path where the container allows it, verified decord where PyAV must decode
    # sequentially; decord: verified decord wherever it passes; pyav: never decord.
    backend: Literal["auto", "decord", "pyav"] = "auto"
    resize_policy: Literal["resize", "pad", "crop"] = "pad"
    decode_timeout_s: float = Field(120.0, gt=0)
    decode_workers: int = Field(2, ge=1)
    decoder_threads: int = Field(1, ge=0)
    decord_deny_list: bool = True
    verify_frames: int = Field(3, ge=1, le=3)
    verify_tolerance: float = Field(0.5, ge=0)
