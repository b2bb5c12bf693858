from typing import Literal

from kangaroo.settings_base import Section


class VideoSettings(Section):
    backend: Literal["auto", "decord", "pyav"] = "auto"
    resize_policy: Literal["resize", "pad", "crop"] = "pad"
    decode_timeout_s: float = 120.0
