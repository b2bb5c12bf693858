from typing import Literal

from pydantic import Field, field_validator

from kangaroo.settings_base import Section


class SynthSettings(Section):
    """The generated sample corpus (`kangaroo synth`). Why these values: docs/params-history.md#synth."""

    seed: int = 0
    num_videos: int = 200  # enough for every filter and QA category, ~1 min on 2 cores
    # Captioned stills (+ ~6 questions each) for tower pre-training, stage 1 and instruction tuning.
    num_images: int = 12000
    # Relative frequency of stills with 1, 2, 3, 4 shapes (placement has at most 4 cells). Mostly one shape:
    # a lone shape's question has one visible answer, the clean signal a small LLM needs first.
    image_shape_weights: list[float] = [6.0, 1.0, 1.0, 1.0]
    # 8 s 128x96 clips under motion/ with direction/order/timestamp questions (kangaroo.synth.motion). Off
    # by default: a real corpus has no such ground truth. The tiny profile uses 1,600: fewer distinct clips
    # are memorised rather than learnt (docs/training.md E42-E50).
    num_motion_clips: int = 0
    motion_seconds: float = 8.0
    # Shapes in motion clips start at a corner of their range and the move crosses at least this share of
    # the frame, to the range's other end: at 64 px a move is then 2-3 patches, not a few pixels, and the
    # positions alone (without their order) tell only the axis. 0 = anywhere in the range, any length.
    motion_min_move: float = 0.3
    # Held-out share of the motion clips, each with one direction, order and timestamp question. 200 of
    # 1,600 still put a category's 3-sigma chance band at 0.25 +- 0.09, and every clip moved out of the
    # held-out split is one more distinct training clip (distinct clips are what teach time).
    motion_eval_fraction: float = Field(0.25, ge=0, lt=1)
    # Still questions' distractors: unseen = colours/shapes the still does not show; shown = the still's other
    # shapes' colours/shapes first, so only binding (which shape wears which colour) answers.
    image_distractors: Literal["unseen", "shown"] = "unseen"
    eval_fraction: float = 0.25  # held-out clips (split by clip, never by question)
    long_video_seconds: float = 180.0  # >= 3 min: long-video tuning and "what happened at mm:ss?" questions
    num_long_videos: int = 2  # long clips are 320x240 at 10 fps, so a couple keep generation fast
    bad_fraction_per_kind: float = 0.03  # share of each planted-bad kind (>= 2 each from 40 videos)
    good_min_seconds: float = 2.0  # good clips are short so the corpus stays small and fast
    good_max_seconds: float = 12.0
    short_seconds: float = 0.6  # planted too-short clips, well under curation's minimum duration
    hd_fraction: float = 0.05  # a handful of 480p/720p clips exercise resizing
    hd_max_seconds: float = 4.0  # keeps 720p encoding cheap
    high_fps_fraction: float = 0.05  # a handful of 60 fps clips exercise frame sampling
    vfr_fraction: float = 0.05  # variable-frame-rate clips (explicit PTS, 1/90000 time base)
    textured_fraction: float = 0.2  # most backgrounds plain so a tiny model can learn colour and shape
    shape_radius_fraction: float = 0.2  # radius / min(w, h): at 64 px a shape fills about one 16 px patch
    min_event_gap_seconds: float = 0.6  # events this far apart keep "which happened first" unambiguous
    move_seconds: float = 1.5  # a move lasts this long (shorter if the clip ends)
    long_event_interval_seconds: float = 12.0  # mean spacing of events in long clips
    x264_preset: str = "veryfast"  # libx264 keeps its default GOP and B-frames; preset only trades speed
    workers: int = 2  # processes rendering clips in parallel

    @field_validator("image_shape_weights")
    @classmethod
    def _weights_for_one_to_four_shapes(cls, weights: list[float]) -> list[float]:
        if not 1 <= len(weights) <= 4 or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(
                f"image_shape_weights {weights}: 1-4 non-negative weights (stills with 1..4 shapes), "
                "at least one positive"
            )
        return weights
