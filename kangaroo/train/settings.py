from kangaroo.settings_base import Section


class TrainSettings(Section):
    seed: int = 0
