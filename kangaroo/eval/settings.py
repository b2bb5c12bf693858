from kangaroo.settings_base import Section


class EvalSettings(Section):
    num_frames: int = 16
