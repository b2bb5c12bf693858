from typing import Literal

from pydantic import field_validator

from kangaroo.settings_base import Section


class SynthSettings(Section):
    seed: int = 0
    num_videos: int = 200
    num_images: int = 40
    # short motion clips under motion/ with direction/order/timestamp questions (kangaroo.synth.motion)
    num_motion_clips: int = 0
    motion_seconds: float = 8.0
    # relative frequency of stills with 1, 2, 3, 4 shapes (placement has at most 4 cells)
    image_shape_weights: list[float] = [1.0, 1.0, 1.0, 1.0]
    image_distractors: Literal["unseen", "shown"] = "unseen"
    eval_fraction: float = 0.25
    long_video_seconds: float = 180.0
    num_long_videos: int = 2
    bad_fraction_per_kind: float = 0.03
    good_min_seconds: float = 2.0
    good_max_seconds: float = 12.0
    short_seconds: float = 0.6
    hd_fraction: float = 0.05
    hd_max_seconds: float = 4.0
    high_fps_fraction: float = 0.05
    vfr_fraction: float = 0.05
    textured_fraction: float = 0.2
    shape_radius_fraction: float = 0.12
    min_event_gap_seconds: float = 0.6
    move_seconds: float = 1.5
    long_event_interval_seconds: float = 12.0
    x264_preset: str = "veryfast"
    workers: int = 2

    @field_validator("image_shape_weights")
    @classmethod
    def _weights_for_one_to_four_shapes(cls, weights: list[float]) -> list[float]:
        if not 1 <= len(weights) <= 4 or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(
                f"image_shape_weights {weights}: 1-4 non-negative weights (stills with 1..4 shapes), "
                "at least one positive"
            )
        return weights
