"""Storage errors: each names the endpoint, bucket and key involved and the cause."""

from kangaroo.errors import InfrastructureError, KangarooError


class StorageError(KangarooError):
    """An object-store operation failed; the message names endpoint, bucket and key."""


class InvalidS3UrlError(StorageError):
    """A string is not a valid `s3://bucket/key` URL (bad scheme, bucket name or key)."""


class UnsafeKeyError(StorageError):
    """An object key would escape the target folder (`..`, absolute path) if written locally."""


class StorageAuthError(StorageError):
    """The endpoint refused the credentials (unknown key, bad secret, access denied)."""


class BucketNotFoundError(StorageError):
    """The bucket does not exist on the endpoint."""


class ObjectNotFoundError(StorageError):
    """No object under that key."""


class EndpointUnreachableError(StorageError, InfrastructureError):
    """The endpoint did not answer (refused, reset, timed out) after every retry."""


class StorageUnavailableError(StorageError, InfrastructureError):
    """The endpoint kept answering with server errors (5xx, SlowDown) until the retry budget ran out."""


class ChecksumMismatchError(StorageError):
    """The bytes stored or received differ from the bytes sent (size, MD5/ETag or SHA-256)."""
