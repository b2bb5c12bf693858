from kangaroo.settings_base import Section


class StorageSettings(Section):
    endpoint: str = "minio.kangaroo.svc.cluster.local:9000"
    bucket: str = "kangaroo"
    secure: bool = False
