from kangaroo.settings_base import Section


class SynthSettings(Section):
    seed: int = 0
    num_videos: int = 200
    num_images: int = 40
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
