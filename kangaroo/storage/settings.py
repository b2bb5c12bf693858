"""Typed `storage:` block of params.yaml: where the S3/MinIO object store is and how transfers behave.

Credentials are never in params: they come from the environment (see `kangaroo.storage.credentials`).
"""

from pydantic import Field

from kangaroo.settings_base import Section

MIB = 1024 * 1024


class StorageSettings(Section):
    endpoint: str = "minio.kangaroo.svc.cluster.local:9000"  # the in-cluster MinIO Service (manifests/)
    bucket: str = "kangaroo"
    secure: bool = False  # in-cluster traffic is plain HTTP; true for an external TLS endpoint
    region: str = "us-east-1"  # MinIO ignores it but SigV4 signing needs one
    # S3 refuses parts under 5 MiB (except the last); files above one part go multipart.
    part_size_mib: int = Field(default=16, ge=5, le=5 * 1024)
    parallel_uploads: int = Field(default=2, ge=1)  # multipart parts in flight; 2 cores here
    # Transient failures (reset, refused, 5xx, SlowDown) are retried with jittered backoff until either budget
    # is spent (long enough for a MinIO pod restart); after that the step fails: an unreachable store is never
    # a verdict on the data.
    max_attempts: int = Field(default=50, ge=1)
    retry_budget_s: float = Field(default=180.0, gt=0.0)
    backoff_s: float = Field(default=0.5, ge=0.0)
    backoff_max_s: float = Field(default=8.0, ge=0.0)
    connect_timeout_s: float = Field(default=10.0, gt=0.0)
    read_timeout_s: float = Field(default=120.0, gt=0.0)  # a checkpoint part on a busy node can stall
    # ETag == MD5 only without SSE-KMS/SSE-C: false for an encrypting MinIO (sha256 metadata still checked).
    verify_etag: bool = True
    # DVC remote used by `version_dataset`; empty = the repo's default remote (.dvc/config `core.remote`).
    dvc_remote: str = ""

    @property
    def part_size_bytes(self) -> int:
        return self.part_size_mib * MIB
