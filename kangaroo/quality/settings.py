from kangaroo.settings_base import Section


class QualitySettings(Section):
    min_caption_words: int = 3
    max_caption_words: int = 200
