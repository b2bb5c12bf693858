from kangaroo.settings_base import Section


class ClusterSettings(Section):
    image: str = "ghcr.io/kangaroo-flow/kangaroo:0.1.0"
    namespace: str = "kangaroo"
