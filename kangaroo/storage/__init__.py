"""Object storage (S3/MinIO) for datasets and checkpoints, and DVC dataset versioning.

`ObjectStore` (minio SDK) and `version_dataset` (DVC) load lazily: params.yaml loading imports this
package for its settings and must stay fast.
"""

from typing import TYPE_CHECKING

from kangaroo.storage.credentials import Credentials, credentials_from_env
from kangaroo.storage.errors import (
    BucketNotFoundError,
    ChecksumMismatchError,
    EndpointUnreachableError,
    InvalidS3UrlError,
    ObjectNotFoundError,
    StorageAuthError,
    StorageError,
    StorageUnavailableError,
    UnsafeKeyError,
)
from kangaroo.storage.settings import StorageSettings
from kangaroo.storage.urls import S3Url, safe_local_path

__all__ = [
    "BucketNotFoundError",
    "ChecksumMismatchError",
    "DatasetVersion",
    "DatasetVersionError",
    "Credentials",
    "EndpointUnreachableError",
    "InvalidS3UrlError",
    "ObjectInfo",
    "ObjectNotFoundError",
    "ObjectStore",
    "S3Url",
    "StorageAuthError",
    "StorageError",
    "StorageSettings",
    "StorageUnavailableError",
    "UnsafeKeyError",
    "credentials_from_env",
    "init_dvc_repo",
    "read_dataset_version",
    "safe_local_path",
    "version_dataset",
]

_LAZY = {
    "ObjectInfo": "kangaroo.storage.object_store",
    "ObjectStore": "kangaroo.storage.object_store",
    "DatasetVersion": "kangaroo.storage.versioning",
    "DatasetVersionError": "kangaroo.storage.versioning",
    "init_dvc_repo": "kangaroo.storage.versioning",
    "read_dataset_version": "kangaroo.storage.versioning",
    "version_dataset": "kangaroo.storage.versioning",
}

if TYPE_CHECKING:
    from kangaroo.storage.object_store import ObjectInfo, ObjectStore
    from kangaroo.storage.versioning import (
        DatasetVersion,
        DatasetVersionError,
        init_dvc_repo,
        read_dataset_version,
        version_dataset,
    )


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kangaroo.storage' has no attribute {name!r}")
