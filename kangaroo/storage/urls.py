"""`s3://bucket/key` URLs and the mapping of object keys to local paths that cannot escape a folder."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from kangaroo.storage.errors import InvalidS3UrlError, UnsafeKeyError

# S3 bucket naming rules: 3-63 chars, lowercase letters, digits, dots and hyphens, alphanumeric at both ends.
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def check_key(key: str, what: str = "key") -> str:
    """Return `key` if it is a safe relative object key, else raise UnsafeKeyError naming it.

    Refused: absolute keys, `.`/`..` segments, backslashes (Windows separators), NUL bytes, empty segments.
    S3 itself accepts such keys, but written to disk they could land outside the target folder.
    """
    if not key:
        return key
    if "\x00" in key or "\\" in key:
        raise UnsafeKeyError(f"{what} {key!r}: contains a NUL byte or a backslash")
    if key.startswith("/"):
        raise UnsafeKeyError(f"{what} {key!r}: absolute keys are refused")
    segments = key.rstrip("/").split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise UnsafeKeyError(f"{what} {key!r}: empty, '.' or '..' path segments are refused")
    if re.match(r"^[A-Za-z]:", key):
        raise UnsafeKeyError(f"{what} {key!r}: looks like a drive path")
    return key


def safe_local_path(root: str | Path, relative_key: str) -> Path:
    """The local path for `relative_key` under `root`; raises UnsafeKeyError if it would leave `root`."""
    if not relative_key or relative_key.endswith("/"):
        raise UnsafeKeyError(f"key {relative_key!r}: not a file key (empty or a folder marker)")
    check_key(relative_key)
    root = Path(root).resolve()
    target = (root / PurePosixPath(relative_key)).resolve()
    if not target.is_relative_to(root):  # symlinked sub-folders could still point outside
        raise UnsafeKeyError(f"key {relative_key!r}: resolves to {target}, outside {root}")
    return target


@dataclass(frozen=True)
class S3Url:
    """A validated `s3://bucket/key` location. `key` may be empty (the whole bucket) or end with `/`."""

    bucket: str
    key: str = ""

    def __post_init__(self) -> None:
        if not _BUCKET_RE.match(self.bucket) or ".." in self.bucket:
            raise InvalidS3UrlError(
                f"bucket {self.bucket!r}: S3 bucket names are 3-63 lowercase letters, digits, '.' or '-'"
            )
        try:
            check_key(self.key)
        except UnsafeKeyError as err:
            raise InvalidS3UrlError(f"s3://{self.bucket}/{self.key}: {err}") from err

    @classmethod
    def parse(cls, url: str | S3Url) -> S3Url:
        """Parse `s3://bucket/prefix/key`; raises InvalidS3UrlError naming the URL and the problem."""
        if isinstance(url, S3Url):
            return url
        if not isinstance(url, str) or not url.startswith("s3://"):
            raise InvalidS3UrlError(f"{url!r}: not an s3:// URL (expected s3://bucket/key)")
        bucket, _, key = url[len("s3://") :].partition("/")
        if not bucket:
            raise InvalidS3UrlError(f"{url!r}: no bucket name")
        try:
            return cls(bucket, key)
        except InvalidS3UrlError as err:
            raise InvalidS3UrlError(f"{url!r}: {err}") from err

    @property
    def prefix(self) -> str:
        """The key as a folder prefix: '' or ending with '/', so `a/b` never matches `a/bc/...`."""
        return self.key if not self.key or self.key.endswith("/") else self.key + "/"

    def join(self, *parts: str) -> S3Url:
        """`s3://b/a` joined with `x/y` -> `s3://b/a/x/y` (each part validated)."""
        keys = [self.key.rstrip("/")] if self.key else []
        keys += [p.strip("/") for p in parts if p.strip("/")]
        return S3Url(self.bucket, "/".join(keys))

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"
