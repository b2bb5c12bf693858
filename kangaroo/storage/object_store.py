"""`ObjectStore`: upload and download files and folders (datasets, checkpoints) to S3/MinIO.

Built on the `minio` SDK. What this layer adds:
- checksums: every upload stores the SHA-256 in the object's user metadata (`x-amz-meta-sha256`) and is
  checked afterwards against the server's size and ETag (the MD5, or the multipart ETag predicted from
  the part size); every download is hashed as it streams and compared with that SHA-256 (or with the
  ETag when it is a plain MD5 and no SHA-256 was recorded), else at least the size;
- retries (tenacity) with exponential backoff on transient failures (connection refused/reset, timeouts, 5xx,
  SlowDown); auth, missing-bucket and missing-key answers fail at once with a typed StorageError;
- downloads go to a temp file next to the target and are renamed only once verified, so an interrupted
  transfer leaves nothing half-written; object keys are validated so none can write outside the folder.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import tenacity
import urllib3
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError

from kangaroo.storage.checksums import CHUNK, file_digests
from kangaroo.storage.credentials import Credentials, credentials_from_env
from kangaroo.storage.errors import (
    BucketNotFoundError,
    ChecksumMismatchError,
    EndpointUnreachableError,
    ObjectNotFoundError,
    StorageAuthError,
    StorageError,
    StorageUnavailableError,
)
from kangaroo.storage.settings import MIB, StorageSettings
from kangaroo.storage.urls import S3Url, check_key, safe_local_path

log = logging.getLogger(__name__)
T = TypeVar("T")

SHA256_META = "sha256"
_AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken"}
_TRANSIENT_CODES = {
    "SlowDown",
    "InternalError",
    "RequestTimeout",
    "ServiceUnavailable",
    "RequestTimeTooSkewed",
}


@dataclass(frozen=True)
class ObjectInfo:
    """What is stored under one key after a verified transfer."""

    url: str
    size: int
    etag: str
    sha256: str | None


class _Transient(Exception):
    """A failure worth retrying; `cause` is what the client raised."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


class ObjectStore:
    """Client for one S3/MinIO endpoint. Methods take `s3://bucket/key` URLs (str or S3Url)."""

    def __init__(
        self,
        endpoint: str,
        access_key: str | None = None,
        secret_key: str | None = None,
        secure: bool = False,
        *,
        session_token: str | None = None,
        credentials: Credentials | None = None,
        region: str = "us-east-1",
        part_size_mib: int = 16,
        parallel_uploads: int = 2,
        max_attempts: int = 4,
        backoff_s: float = 0.5,
        backoff_max_s: float = 8.0,
        retry_budget_s: float | None = None,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 120.0,
        verify_etag: bool = True,
    ) -> None:
        """Keys given as arguments, else `credentials`, else the environment (see storage.credentials)."""
        if access_key is None and secret_key is None:
            creds = credentials or credentials_from_env()
        else:
            creds = Credentials(access_key, secret_key, session_token, source="arguments")
        self.endpoint = endpoint
        self.credentials = creds
        self.part_size = part_size_mib * MIB
        self.parallel_uploads = parallel_uploads
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.retry_budget_s = retry_budget_s
        self.verify_etag = verify_etag
        # Retries are ours (typed errors, logged attempts): urllib3 must not retry underneath.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s),
            maxsize=max(10, parallel_uploads),
            retries=urllib3.Retry(total=0, redirect=0, raise_on_status=False),
        )
        self._client = Minio(
            endpoint,
            access_key=creds.access_key,
            secret_key=creds.secret_key,
            session_token=creds.session_token,
            secure=secure,
            region=region,
            http_client=http,
        )

    @classmethod
    def from_settings(cls, settings: StorageSettings, credentials: Credentials | None = None) -> ObjectStore:
        """A store for params.yaml's `storage:` block; credentials from the environment unless given."""
        creds = credentials or credentials_from_env()
        return cls(
            settings.endpoint,
            secure=settings.secure,
            credentials=creds,
            region=settings.region,
            part_size_mib=settings.part_size_mib,
            parallel_uploads=settings.parallel_uploads,
            max_attempts=settings.max_attempts,
            backoff_s=settings.backoff_s,
            backoff_max_s=settings.backoff_max_s,
            retry_budget_s=settings.retry_budget_s,
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.read_timeout_s,
            verify_etag=settings.verify_etag,
        )

    # ---- error handling -------------------------------------------------------------------------------

    def _where(self, operation: str, bucket: str, key: str | None) -> str:
        target = f"s3://{bucket}/{key}" if key is not None else f"bucket {bucket!r}"
        return f"{operation} {target} at endpoint {self.endpoint}"

    def _translate(self, err: S3Error, operation: str, bucket: str, key: str | None) -> StorageError:
        where = self._where(operation, bucket, key)
        if err.code in _AUTH_CODES or (err.response is not None and err.response.status in (401, 403)):
            hint = (
                f"credentials from {self.credentials.source} were refused"
                if self.credentials.access_key
                else "no credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
            )
            return StorageAuthError(f"{where}: {err.code}: {err.message} ({hint})")
        if err.code == "NoSuchBucket":
            return BucketNotFoundError(f"{where}: bucket {bucket!r} does not exist")
        if err.code in ("NoSuchKey", "ResourceNotFound", "NoSuchObject"):
            return ObjectNotFoundError(f"{where}: no such object")
        return StorageError(f"{where}: {err.code}: {err.message}")

    def _retry(self, operation: str, bucket: str, key: str | None, call: Callable[[], T]) -> T:
        """Run `call`, retrying transient failures (tenacity: exponential backoff with full jitter) until
        `max_attempts` or `retry_budget_s` is spent; then a typed StorageError. The budget is what lets a
        step ride out a MinIO pod restart; after it, the fault is the step's, never the object's."""
        where = self._where(operation, bucket, key)

        def attempt() -> T:
            try:
                return call()
            except S3Error as err:
                if err.code not in _TRANSIENT_CODES:
                    raise self._translate(err, operation, bucket, key) from err
                raise _Transient(err) from err
            except (ServerError, InvalidResponseError) as err:
                status = getattr(err, "status_code", None) or getattr(err, "_code", None)
                if isinstance(status, int) and status < 500:
                    raise StorageError(f"{where}: {err}") from err
                raise _Transient(err) from err
            except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as err:
                raise _Transient(err) from err

        def log_retry(state: tenacity.RetryCallState) -> None:
            log.warning(
                "%s failed (attempt %d/%d: %s); retrying in %.2fs",
                where,
                state.attempt_number,
                self.max_attempts,
                type(state.outcome.exception().cause).__name__,
                state.next_action.sleep if state.next_action else 0.0,
            )

        stop = tenacity.stop_after_attempt(self.max_attempts)
        if self.retry_budget_s is not None:
            stop = stop | tenacity.stop_after_delay(self.retry_budget_s)
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Transient),
            stop=stop,
            wait=tenacity.wait_random_exponential(multiplier=self.backoff_s, max=self.backoff_max_s),
            before_sleep=log_retry,
        )
        try:
            return retrying(attempt)
        except tenacity.RetryError as err:
            attempts = err.last_attempt.attempt_number
            cause = err.last_attempt.exception().cause
            spent = f"after {attempts} attempts"
            if isinstance(cause, S3Error | ServerError | InvalidResponseError):
                raise StorageUnavailableError(f"{where}: server error {spent}: {cause}") from cause
            raise EndpointUnreachableError(
                f"{where}: endpoint unreachable {spent}: {type(cause).__name__}: {cause}"
            ) from cause

    # ---- buckets and listing --------------------------------------------------------------------------

    def bucket_exists(self, bucket: str) -> bool:
        return self._retry("check", bucket, None, lambda: self._client.bucket_exists(bucket))

    def ensure_bucket(self, bucket: str) -> None:
        """Create `bucket` unless it exists (for set-up scripts and tests; pipelines expect it to exist)."""
        S3Url(bucket)
        if not self.bucket_exists(bucket):
            self._retry("create", bucket, None, lambda: self._client.make_bucket(bucket))
            log.info("created bucket %s at %s", bucket, self.endpoint)

    def list(self, url_prefix: str | S3Url) -> list[str]:
        """Every object key under the prefix (recursive, sorted). `s3://b/data` lists `data/...` only,
        never `database/...`: a non-empty prefix is treated as a folder."""
        return [key for key, _, _ in self.list_versions(url_prefix)]

    def list_versions(self, url_prefix: str | S3Url) -> list[tuple[str, str, int]]:
        """(key, ETag, size) of every object under the prefix, sorted by key: what names each object's
        content in the listing itself (no request per object). Prefix rules as `list`."""
        url = S3Url.parse(url_prefix)

        def call() -> list[tuple[str, str, int]]:
            objects = self._client.list_objects(url.bucket, prefix=url.prefix or None, recursive=True)
            found = (
                (o.object_name, (o.etag or "").strip('"'), int(o.size or 0)) for o in objects if not o.is_dir
            )
            return sorted(found)

        return self._retry("list", url.bucket, url.prefix, call)

    def stat(self, url: str | S3Url) -> ObjectInfo:
        """Size, ETag and recorded SHA-256 of one object."""
        url = S3Url.parse(url)
        try:
            stat = self._retry(
                "stat", url.bucket, url.key, lambda: self._client.stat_object(url.bucket, url.key)
            )
        except ObjectNotFoundError:
            # A HEAD on a missing bucket also answers 404 without a body: tell the two apart.
            if not self.bucket_exists(url.bucket):
                raise BucketNotFoundError(
                    f"{self._where('stat', url.bucket, url.key)}: bucket {url.bucket!r} does not exist"
                ) from None
            raise
        metadata = {k.lower(): v for k, v in (stat.metadata or {}).items()}
        return ObjectInfo(
            url=str(url),
            size=int(stat.size or 0),
            etag=(stat.etag or "").strip('"'),
            sha256=metadata.get(f"x-amz-meta-{SHA256_META}"),
        )

    def exists(self, url: str | S3Url) -> bool:
        try:
            self.stat(url)
        except ObjectNotFoundError:
            return False
        return True

    def delete(self, url: str | S3Url) -> None:
        url = S3Url.parse(url)
        self._retry("delete", url.bucket, url.key, lambda: self._client.remove_object(url.bucket, url.key))

    # ---- files ----------------------------------------------------------------------------------------

    def upload_file(
        self, path: str | Path, url: str | S3Url, metadata: dict[str, str] | None = None
    ) -> ObjectInfo:
        """Upload one file (multipart above `part_size_mib`) and verify what the server stored."""
        url = S3Url.parse(url)
        path = Path(path)
        if not url.key or url.key.endswith("/"):
            raise StorageError(f"upload {path} to {url}: the target URL must name an object, not a folder")
        if not path.is_file():
            raise StorageError(f"upload {path} to {url}: no such local file")
        digests = file_digests(path, self.part_size)
        meta = {**(metadata or {}), SHA256_META: digests.sha256}
        self._retry(
            "upload",
            url.bucket,
            url.key,
            lambda: self._client.fput_object(
                url.bucket,
                url.key,
                str(path),
                metadata=meta,
                part_size=self.part_size,
                num_parallel_uploads=self.parallel_uploads,
            ),
        )
        stored = self.stat(url)
        problem = None
        if stored.size != digests.size:
            problem = f"size {stored.size} != local {digests.size}"
        elif self.verify_etag and stored.etag != digests.etag:
            problem = f"ETag {stored.etag} != expected {digests.etag}"
        elif stored.sha256 != digests.sha256:
            problem = f"recorded sha256 {stored.sha256} != local {digests.sha256}"
        if problem:
            self.delete(url)  # never leave a corrupt object where a reader expects the real one
            raise ChecksumMismatchError(
                f"{self._where('upload', url.bucket, url.key)}: {problem}; object removed"
            )
        log.debug("uploaded %s -> %s (%d bytes, sha256 %s)", path, url, digests.size, digests.sha256[:12])
        return stored

    def download_file(self, url: str | S3Url, path: str | Path) -> ObjectInfo:
        """Download one object to `path`, verified; `path` appears only once complete and correct."""
        url = S3Url.parse(url)
        path = Path(path)
        info = self.stat(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            self._retry("download", url.bucket, url.key, lambda: self._fetch_verified(url, info, tmp))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return info

    def _fetch_verified(self, url: S3Url, info: ObjectInfo, tmp: Path) -> None:
        """Stream the object into `tmp` (truncated first, so a retry starts clean) and check it."""
        import hashlib

        md5, sha256, size = hashlib.md5(), hashlib.sha256(), 0
        response = self._client.get_object(url.bucket, url.key)
        try:
            with tmp.open("wb") as out:
                for chunk in response.stream(CHUNK):
                    out.write(chunk)
                    md5.update(chunk)
                    sha256.update(chunk)
                    size += len(chunk)
        finally:
            response.close()
            response.release_conn()
        where = self._where("download", url.bucket, url.key)
        if size != info.size:
            raise ChecksumMismatchError(f"{where}: received {size} bytes, object has {info.size}")
        if info.sha256 is not None:
            if sha256.hexdigest() != info.sha256:
                raise ChecksumMismatchError(f"{where}: sha256 {sha256.hexdigest()} != recorded {info.sha256}")
        elif self.verify_etag and "-" not in info.etag and md5.hexdigest() != info.etag:
            raise ChecksumMismatchError(f"{where}: md5 {md5.hexdigest()} != ETag {info.etag}")
        elif "-" in info.etag:
            log.debug("%s: no sha256 recorded and multipart ETag: only the size was verified", where)

    # ---- folders (datasets, checkpoints) --------------------------------------------------------------

    def upload_dir(self, local_dir: str | Path, url_prefix: str | S3Url) -> list[str]:
        """Upload every file under `local_dir` to `url_prefix/<relative path>`; returns the keys."""
        local_dir = Path(local_dir)
        prefix = S3Url.parse(url_prefix)
        if not local_dir.is_dir():
            raise StorageError(f"upload {local_dir} to {prefix}: no such local folder")
        files = sorted(p for p in local_dir.rglob("*") if p.is_file())
        keys = []
        for file in files:
            target = prefix.join(file.relative_to(local_dir).as_posix())
            self.upload_file(file, target)
            keys.append(target.key)
        log.info("uploaded %d files from %s to %s", len(keys), local_dir, prefix)
        return keys

    def download_dir(self, url_prefix: str | S3Url, local_dir: str | Path) -> list[Path]:
        """Download every object under `url_prefix` into `local_dir`, keeping relative paths.

        All keys are validated before anything is written: one key with `..` or an absolute path
        refuses the whole download (UnsafeKeyError) rather than leaving a partial folder.
        """
        prefix = S3Url.parse(url_prefix)
        local_dir = Path(local_dir)
        keys = self.list(prefix)
        if not keys:
            raise ObjectNotFoundError(f"{self._where('download', prefix.bucket, prefix.prefix)}: no objects")
        plan = []
        for key in keys:
            if key.endswith("/"):
                continue  # folder marker objects some tools create
            relative = key[len(prefix.prefix) :]
            check_key(key)
            plan.append((S3Url(prefix.bucket, key), safe_local_path(local_dir, relative)))
        written = []
        for url, target in plan:
            self.download_file(url, target)
            written.append(target)
        log.info("downloaded %d files from %s to %s", len(written), prefix, local_dir)
        return written
