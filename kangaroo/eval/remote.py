"""Benchmarks on S3/MinIO: download a prefix once into the eval cache, then read it like a local folder."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)
COMPLETE_MARKER = ".download-complete"


def cache_folder(url: str, cache_dir: Path) -> Path:
    """`s3://bucket/a/b` -> `cache_dir/bucket/a/b` (the key is validated, so it cannot leave the cache)."""
    from kangaroo.storage.urls import S3Url

    parsed = S3Url.parse(url)
    return Path(cache_dir) / parsed.bucket / parsed.key.strip("/")


def download_prefix(url: str, cache_dir: Path, storage_settings: Any = None, store: Any = None) -> Path:
    """Local copy of every object under `url`; reused when a previous download completed.

    The store comes from params.yaml's `storage:` block (credentials from the environment) unless given.
    Raises kangaroo.storage.errors.StorageError naming the endpoint, bucket and key on failure.
    """
    from kangaroo.storage.object_store import ObjectStore
    from kangaroo.storage.settings import StorageSettings

    target = cache_folder(url, cache_dir)
    marker = target / COMPLETE_MARKER
    if marker.is_file():
        logger.info("%s: using the cached copy in %s", url, target)
        return target
    store = store or ObjectStore.from_settings(storage_settings or StorageSettings())
    files = store.download_dir(url, target)
    marker.write_text(f"{url}\n{len(files)} files\n")
    return target
