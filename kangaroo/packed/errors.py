"""Errors of packed training data: each names the shard, index or URI and the cause."""

from kangaroo.errors import KangarooError


class PackedDataError(KangarooError):
    """Packed data is missing, corrupt, unreachable or does not fit this model (names what and why)."""
