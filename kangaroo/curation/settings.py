from typing import Literal

from kangaroo.settings_base import Section


class CurationSettings(Section):
    shard_size: int = 64
    workers: int = 2
    video_timeout_s: float = 120.0


class CaptionSettings(Section):
    backend: Literal["source", "transformers", "openai"] = "source"
    num_key_frames: int = 5
