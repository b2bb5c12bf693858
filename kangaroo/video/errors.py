"""The one error every reader of video raises for a bad input file."""

from __future__ import annotations

from pathlib import Path

from kangaroo.errors import KangarooError


class VideoError(KangarooError):
    """A video or image could not be read; names the file and the cause.

    `cause` is one of: "missing", "empty", "corrupt", "unsupported", "no_video_stream", "undecodable",
    "timeout". Curation maps every VideoError to a `decode_error` (or `timeout`) rejection.
    """

    def __init__(self, path: str | Path, cause: str, detail: str = "") -> None:
        self.path = str(path)
        self.cause = cause
        self.detail = detail
        message = f"{self.path}: {cause}"
        super().__init__(f"{message} ({detail})" if detail else message)
