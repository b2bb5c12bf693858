"""Digests of a local file computed in one pass: MD5, SHA-256 and the S3 multipart ETag.

S3 (and MinIO, moto) give a single-part object the ETag `md5(body)` and a multipart object
`md5(md5(part1) + md5(part2) + ...)-N`; knowing the part size we can predict it exactly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class FileDigests:
    size: int
    md5: str
    sha256: str
    etag: str  # the ETag S3 will report for this file uploaded with the given part size


def file_digests(path: str | Path, part_size: int) -> FileDigests:
    """Hash `path` once; `part_size` is the multipart part size the upload will use."""
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    part_md5s: list[bytes] = []
    part, part_filled, size = hashlib.md5(), 0, 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            md5.update(chunk)
            sha256.update(chunk)
            size += len(chunk)
            while chunk:  # parts need not align with read chunks
                take = chunk[: part_size - part_filled]
                part.update(take)
                part_filled += len(take)
                chunk = chunk[len(take) :]
                if part_filled == part_size:
                    part_md5s.append(part.digest())
                    part, part_filled = hashlib.md5(), 0
    if part_filled:
        part_md5s.append(part.digest())
    if len(part_md5s) <= 1:
        etag = md5.hexdigest()
    else:
        etag = f"{hashlib.md5(b''.join(part_md5s)).hexdigest()}-{len(part_md5s)}"
    return FileDigests(size=size, md5=md5.hexdigest(), sha256=sha256.hexdigest(), etag=etag)
