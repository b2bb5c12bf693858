"""Judge one video: metadata filters, then one planned decode, then frame filters, cheapest first.

This runs inside a curation worker process. It never raises for a bad video: every outcome is a
LedgerRow (kept, or rejected with a reason and, for unreadable files, the error text).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kangaroo.config import Params
from kangaroo.curation.filters import Filter, VideoInfo, build_filters
from kangaroo.curation.frame_plan import FramePlan
from kangaroo.curation.ledger import DECODE_ERROR, KEPT, REJECTED, RESOURCE_LIMIT, TIMEOUT, LedgerRow
from kangaroo.curation.manifest import is_s3
from kangaroo.errors import InfrastructureError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoTask:
    """One input for a worker: where it is, its manifest key, its shard, and the run's params."""

    video: str
    key: str
    shard: int
    params: Params
    every_frame: bool = False  # benchmark reference: every filter on every frame at full resolution


def _rejected(task: VideoTask, reason: str, scores: dict, info: VideoInfo | None, error: str | None = None):
    return _row(task, REJECTED, reason, scores, info, error)


def _row(task, status, reason, scores, info: VideoInfo | None, error=None) -> LedgerRow:
    return LedgerRow(
        video=task.video,
        key=task.key,
        status=status,
        reason=reason,
        error=error,
        scores=scores,
        duration=None if info is None else round(info.duration, 4),
        fps=None if info is None else round(info.fps, 4),
        width=None if info is None else info.width,
        height=None if info is None else info.height,
        shard=task.shard,
    )


def _reason(err) -> str:
    # The video module's own decode deadline (video.decode_timeout_s) is a timeout too.
    cause = getattr(err, "cause", "")
    return {"timeout": TIMEOUT, "resource_limit": RESOURCE_LIMIT}.get(cause, DECODE_ERROR)


def judge(reader, task: VideoTask, filters: list[Filter]) -> LedgerRow:
    """Run `filters` in order on an open VideoReader; stop at the first rejection (later scores null)."""
    from kangaroo.video import VideoError
    from kangaroo.video.errors import OutOfMemoryError

    info = VideoInfo(
        video=task.video,
        key=task.key,
        duration=float(reader.duration),
        fps=float(reader.fps),
        width=int(reader.width),
        height=int(reader.height),
        num_frames=int(reader.num_frames),
    )
    scores: dict[str, float | None] = {f.name: None for f in filters}
    decoded = None
    plan = None
    for filter_ in filters:
        frames = None
        if filter_.frames is not None:
            if decoded is None:
                # First frame filter reached: the video passed every metadata filter, decode once.
                plan = FramePlan.build(filters, info, reader.timestamps, task.every_frame)
                try:
                    decoded = plan.decode(reader, info)
                except OutOfMemoryError:
                    raise  # evaluate_video hands it to the pool
                except VideoError as err:
                    return _rejected(task, _reason(err), scores, info, str(err))
            frames = plan.frames_for(filter_, decoded)
        score = round(float(filter_.score(frames, info)), 6)
        scores[filter_.name] = score
        if not filter_.passes(score):
            return _rejected(task, filter_.name, scores, info)
    return _row(task, KEPT, None, scores, info)


def evaluate_video(task: VideoTask) -> LedgerRow:
    """The ledger row of one input file (downloaded to a private temp folder first if it is on S3).

    Only the file's own bytes make a rejection: a download or local-disk failure (after the store's retry
    budget) raises InfrastructureError, which fails the shard instead of writing a row."""
    from kangaroo.video import VideoError, open_video
    from kangaroo.video.errors import OutOfMemoryError

    filters = build_filters(task.params.curation)
    scratch = None
    try:
        path = task.video
        if is_s3(task.video):
            scratch, path = _stage(task)
        try:
            with open_video(path, task.params.video) as reader:
                return judge(reader, task, filters)
        except OutOfMemoryError as err:
            # Up to the pool: it records `resource_limit` and replaces this worker (its heap is suspect).
            raise MemoryError(str(err)) from err
        except VideoError as err:
            return _rejected(task, _reason(err), {f.name: None for f in filters}, None, str(err))
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _stage(task: VideoTask) -> tuple[Path, str]:
    """Download an S3 input into a new private temp folder: (folder, local path)."""
    from kangaroo.storage import ObjectStore, StorageError

    scratch = None
    try:
        scratch = Path(tempfile.mkdtemp(prefix="curate-"))
        path = str(scratch / Path(task.key).name)
        ObjectStore.from_settings(task.params.storage).download_file(task.video, path)
    except (StorageError, OSError) as err:  # store unreachable/5xx after retries, disk full, ...
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        raise InfrastructureError(f"{task.video}: could not stage the input for decoding: {err}") from err
    return scratch, path
