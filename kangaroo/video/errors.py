"""The one error every reader of video raises for a bad input file."""

from __future__ import annotations

from pathlib import Path

from kangaroo.errors import KangarooError


class VideoError(KangarooError):
    """A video or image could not be read; names the file and the cause.

    `cause` is one of: "missing", "empty", "corrupt", "unsupported", "no_video_stream", "undecodable",
    "timeout", "resource_limit". Curation maps "timeout" and "resource_limit" to rejections of that name
    and every other cause to a `decode_error` rejection.
    """

    def __init__(self, path: str | Path, cause: str, detail: str = "") -> None:
        self.path = str(path)
        self.cause = cause
        self.detail = detail
        message = f"{self.path}: {cause}"
        super().__init__(f"{message} ({detail})" if detail else message)


class ResourceLimitError(VideoError):
    """The file asks for more than the configured limits (pixels per frame, frames, duration) or ran out of
    the worker's memory while decoding: a pixel or decompression bomb, refused instead of decoded."""

    def __init__(self, path: str | Path, detail: str = "") -> None:
        super().__init__(path, "resource_limit", detail)


class OutOfMemoryError(ResourceLimitError):
    """Decoding this file ran the process out of memory (its RLIMIT_DATA in a curation worker): the
    process's state is suspect afterwards, so a worker that sees this is replaced."""
