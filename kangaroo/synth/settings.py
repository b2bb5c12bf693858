from kangaroo.settings_base import Section


class SynthSettings(Section):
    seed: int = 0
    num_videos: int = 200
    num_images: int = 40
    eval_fraction: float = 0.25
    long_video_seconds: float = 180.0
