"""Caption the kept videos of a curation ledger into dataset.jsonl (format: docs/data-formats.md).

One call captions one shard (the KFP fan-out's task, `kangaroo caption --shard I`): rows are appended to
`dataset.jsonl` as videos finish, so a killed or retried task reopens the folder and captions only the keys
not written yet. A video whose captioning fails (missing source caption, endpoint down after retries,
undecodable key frame) gets no dataset row; it is listed in `caption_failures.jsonl` with the error. A video
that cannot be fetched (object store down past its retry budget, disk full) is not a caption failure: the
task stops with InfrastructureError (exit 75, KFP retries it) and the retry resumes from the rows written.
`merge_captions` (kangaroo.curation.captioning.merge) concatenates the shards and checks the accounting.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from kangaroo.config import Params
from kangaroo.curation.captioning.appendlog import AppendLog
from kangaroo.curation.captioning.base import Captioner, CaptionError
from kangaroo.curation.filters import VideoInfo
from kangaroo.curation.ledger import KEPT, LEDGER_FILE, LedgerRow, read_ledger
from kangaroo.curation.manifest import is_s3
from kangaroo.errors import InfrastructureError, KangarooError

log = logging.getLogger(__name__)
DATASET_FILE = "dataset.jsonl"
FAILURES_FILE = "caption_failures.jsonl"
CAPTION_SUMMARY_FILE = "caption_summary.json"


@dataclass
class CaptionSummary:
    captioner: str
    num_ledger_rows: int
    num_kept: int
    captioned: int
    failed: int
    seconds: float
    videos_per_minute: float
    shard: int | None = None
    resumed: int = 0  # kept videos already captioned (or failed) by an earlier attempt, skipped this time

    def write(self, out_dir: Path) -> None:
        (out_dir / CAPTION_SUMMARY_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")


def make_captioner(params: Params) -> Captioner:
    """The backend named by `caption.backend`."""
    settings = params.caption
    if settings.backend == "source":
        from kangaroo.curation.captioning.source import SourceCaptioner

        return SourceCaptioner(settings.duplicate_iou)
    if settings.backend == "transformers":
        from kangaroo.curation.captioning.hf import TransformersCaptioner

        return TransformersCaptioner(settings)
    from kangaroo.curation.captioning.openai_api import OpenAICaptioner

    return OpenAICaptioner(settings)


class VideoFetcher:
    """Local paths of ledger videos: as is, relative to the ledger's folder, or downloaded from S3 with their
    `.txt`/`.json` caption sidecars. One object-store client per task, shared by the video threads."""

    def __init__(self, curated_dir: Path, params: Params) -> None:
        self.curated_dir = curated_dir
        self.params = params
        self._store = None
        self._lock = threading.Lock()

    def store(self):
        with self._lock:
            if self._store is None:
                from kangaroo.storage import ObjectStore

                self._store = ObjectStore.from_settings(self.params.storage)
            return self._store

    def local_copy(self, row: LedgerRow, scratch: Path) -> Path:
        """The video (and its sidecars) on local disk; InfrastructureError when the store or disk fails."""
        from kangaroo.storage import StorageError

        try:
            return self._local_copy(row, scratch)
        except (StorageError, OSError) as err:  # a kept video was readable at curation: not its bytes' fault
            raise InfrastructureError(
                f"{row.video}: could not fetch the kept video to caption it: {err}"
            ) from err

    def _local_copy(self, row: LedgerRow, scratch: Path) -> Path:
        if not is_s3(row.video):
            path = Path(row.video)
            return path if path.is_absolute() else self.curated_dir / path
        store = self.store()
        local = scratch / Path(row.key).name
        store.download_file(row.video, local)
        stem_url = row.video.rsplit(".", 1)[0] if "." in row.video.rsplit("/", 1)[-1] else row.video
        for suffix in (".txt", ".json"):
            if store.exists(stem_url + suffix):
                store.download_file(stem_url + suffix, local.with_suffix(suffix))
        return local


def caption_one(captioner: Captioner, row: LedgerRow, path: Path, params: Params, alignment=None) -> dict:
    """The dataset.jsonl row of one kept video; with an alignment scorer, also the caption-video alignment
    (kangaroo.curation.alignment) from the same key frames."""
    from kangaroo.video import open_video

    with open_video(path, params.video) as reader:
        frames = reader.sample_uniform(params.caption.num_key_frames, size=None)
    info = VideoInfo(
        str(path), row.key, row.duration or 0.0, row.fps or 0.0, row.width or 0, row.height or 0, 0
    )
    frame_captions = captioner.caption_frames(frames, info)
    caption = captioner.caption_video(frame_captions, info)
    if not caption.strip():
        raise CaptionError(f"{row.video}: {captioner.name} returned an empty video caption")
    record = {
        "video": row.video,
        "key": row.key,
        "duration": row.duration,
        "fps": row.fps,
        "width": row.width,
        "height": row.height,
        "scores": row.scores,
        "frame_captions": [{"t": fc.t, "caption": fc.caption} for fc in frame_captions],
        "caption": caption,
        "captioner": captioner.name,
    }
    if alignment is not None:
        record["alignment"] = alignment.row_alignment(frames.frames, caption)
    return record


def kept_rows(ledger: list[LedgerRow], shard: int | None) -> list[LedgerRow]:
    return [row for row in ledger if row.status == KEPT and (shard is None or row.shard == shard)]


def caption_curated(
    curated_dir: str | Path,
    out_dir: str | Path,
    params: Params,
    shard: int | None = None,
    alignment=None,
    progress: bool = True,
) -> CaptionSummary:
    """Caption the kept rows of `curated_dir/ledger.jsonl` (only shard `shard`'s when given) into
    `out_dir/dataset.jsonl` + `caption_failures.jsonl`, resuming what an earlier attempt wrote there; copy the
    ledger next to them and return the CaptionSummary (also in `out_dir/caption_summary.json`).

    `alignment` is an AlignmentScorer (kangaroo.curation.alignment) or None. Raises CaptionError if the
    files do not account for every kept video exactly once.
    """
    curated_dir, out_dir = Path(curated_dir), Path(out_dir)
    ledger = read_ledger(curated_dir / LEDGER_FILE)
    kept = kept_rows(ledger, shard)
    out_dir.mkdir(parents=True, exist_ok=True)
    captioner = make_captioner(params)
    started = time.monotonic()
    with (
        AppendLog(out_dir / DATASET_FILE, CaptionError) as dataset,
        AppendLog(out_dir / FAILURES_FILE, CaptionError) as failures,
    ):
        done = dataset.keys | failures.keys
        todo = [row for row in kept if row.key not in done]
        if len(todo) < len(kept):
            log.info(
                "%s: resuming, %d of %d kept videos already done", out_dir, len(kept) - len(todo), len(kept)
            )
        try:
            _caption_rows(captioner, todo, VideoFetcher(curated_dir, params), params, alignment, dataset,
                          failures, progress)  # fmt: skip
        finally:
            captioner.close()
        summary = CaptionSummary(
            captioner=captioner.name,
            num_ledger_rows=len(ledger),
            num_kept=len(kept),
            captioned=len(dataset.keys),
            failed=len(failures.keys),
            seconds=round(time.monotonic() - started, 3),
            videos_per_minute=0.0,
            shard=shard,
            resumed=len(kept) - len(todo),
        )
        check_caption_accounting({row.key for row in kept}, dataset.keys, failures.keys, str(out_dir))
    if summary.seconds > 0:
        summary.videos_per_minute = round(60 * len(todo) / summary.seconds, 2)
    if (curated_dir / LEDGER_FILE).resolve() != (out_dir / LEDGER_FILE).resolve():
        shutil.copyfile(curated_dir / LEDGER_FILE, out_dir / LEDGER_FILE)
    summary.write(out_dir)
    return summary


def _caption_rows(captioner, todo, fetcher, params, alignment, dataset, failures, progress) -> None:
    """Caption `todo` with `captioner.parallel_videos` videos in flight; rows are appended as they finish."""

    def one(row: LedgerRow) -> dict:
        try:
            scratch = Path(tempfile.mkdtemp(prefix="caption-"))
        except OSError as err:
            raise InfrastructureError(f"{row.video}: no scratch space to caption it: {err}") from err
        try:
            return caption_one(captioner, row, fetcher.local_copy(row, scratch), params, alignment)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    workers = max(1, captioner.parallel_videos)
    rows = iter(todo)
    bar = tqdm(total=len(todo), desc=f"caption ({captioner.name})", unit="video", disable=not progress)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="caption-video") as pool:
        pending: dict[Future, LedgerRow] = {}
        while True:
            # A bounded window of submitted videos: memory does not grow with the shard.
            for row in rows:
                pending[pool.submit(one, row)] = row
                if len(pending) >= 2 * workers:
                    break
            if not pending:
                break
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                row = pending.pop(future)
                try:
                    dataset.append(future.result())
                except InfrastructureError:
                    # the shard fails (a retry resumes from the rows appended): drop what has not started
                    for queued in pending:
                        queued.cancel()
                    raise
                except KangarooError as err:  # CaptionError, VideoError: this video only
                    log.warning("%s: not captioned: %s", row.key, err)
                    failures.append({"video": row.video, "key": row.key, "error": str(err)})
                bar.update()
    bar.close()


def check_caption_accounting(kept: set[str], captioned: set[str], failed: set[str], where: str) -> None:
    """Raise unless every kept key is captioned or failed, exactly once, and nothing else is."""
    both = captioned & failed
    missing = kept - captioned - failed
    extra = (captioned | failed) - kept
    if both or missing or extra:
        raise CaptionError(
            f"{where}: {len(kept)} kept videos but {len(captioned)} captioned + {len(failed)} failed; "
            f"missing={sorted(missing)[:5]} in both={sorted(both)[:5]} not kept={sorted(extra)[:5]}"
        )


def show_caption_summary(summary: CaptionSummary) -> None:
    title = "captioning" if summary.shard is None else f"captioning, shard {summary.shard}"
    table = Table(title=f"{title} ({summary.captioner})")
    table.add_column("outcome")
    table.add_column("videos", justify="right")
    table.add_row("ledger rows", str(summary.num_ledger_rows))
    table.add_row("kept", str(summary.num_kept))
    table.add_row("captioned", str(summary.captioned))
    table.add_row("failed", str(summary.failed), style="red" if summary.failed else None)
    if summary.resumed:
        table.add_row("done by an earlier attempt", str(summary.resumed))
    table.caption = f"{summary.videos_per_minute:.1f} videos/min over {summary.seconds:.1f} s"
    Console(stderr=True).print(table)


def caption_shard(
    curated_dir: str | Path,
    out_dir: str | Path,
    params: Params,
    shard: int,
    alignment=None,
    resume_root: str | Path | None = None,
) -> CaptionSummary:
    """Caption one shard (the KFP fan-out's task). With `resume_root` (a volume that outlives the pod, e.g.
    the checkpoint PVC) rows go to `resume_root/captions/<inputs hash>/NNNNN` first, so a retried pod resumes
    there; the finished files are then copied to `out_dir`. The hash covers the shard's ledger, the caption
    settings and the alignment model, so changed inputs never resume stale rows."""
    import hashlib

    curated_dir, out_dir = Path(curated_dir), Path(out_dir)
    if not resume_root:
        return caption_curated(curated_dir, out_dir, params, shard=shard, alignment=alignment)
    digest = hashlib.sha256((curated_dir / LEDGER_FILE).read_bytes())
    digest.update(params.caption.model_dump_json().encode())
    digest.update((alignment.name if alignment is not None else "").encode())
    work_dir = Path(resume_root) / "captions" / digest.hexdigest()[:20] / f"{shard:05d}"
    summary = caption_curated(curated_dir, work_dir, params, shard=shard, alignment=alignment)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in (DATASET_FILE, FAILURES_FILE, CAPTION_SUMMARY_FILE, LEDGER_FILE):
        shutil.copyfile(work_dir / name, out_dir / name)
    return summary
