from kangaroo.settings_base import Section


class ModelSettings(Section):
    vision_model: str = ""
    llm_model: str = ""
