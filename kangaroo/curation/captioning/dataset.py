"""Caption every kept video of a curation ledger into dataset.jsonl (format: docs/data-formats.md).

A video whose captioning fails (missing source caption, endpoint down after retries, undecodable key frame)
gets no dataset row; it is listed in `caption_failures.jsonl` with the error, and counted in the summary.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from kangaroo.config import Params
from kangaroo.curation.captioning.base import Captioner, CaptionError
from kangaroo.curation.filters import VideoInfo
from kangaroo.curation.ledger import KEPT, LEDGER_FILE, LedgerRow, read_ledger
from kangaroo.curation.manifest import is_s3
from kangaroo.errors import KangarooError

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


def _local_copy(row: LedgerRow, curated_dir: Path, params: Params, scratch: Path) -> Path:
    """A local path to the video: as is, relative to the ledger's folder, or downloaded from S3 (with its
    `.txt`/`.json` caption sidecars when they exist)."""
    if not is_s3(row.video):
        path = Path(row.video)
        return path if path.is_absolute() else curated_dir / path
    from kangaroo.storage import ObjectStore

    store = ObjectStore.from_settings(params.storage)
    local = scratch / Path(row.key).name
    store.download_file(row.video, local)
    stem_url = row.video.rsplit(".", 1)[0] if "." in row.video.rsplit("/", 1)[-1] else row.video
    for suffix in (".txt", ".json"):
        if store.exists(stem_url + suffix):
            store.download_file(stem_url + suffix, local.with_suffix(suffix))
    return local


def caption_one(captioner: Captioner, row: LedgerRow, path: Path, params: Params) -> dict:
    """The dataset.jsonl row of one kept video."""
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
    return {
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


def caption_curated(curated_dir: str | Path, out_dir: str | Path, params: Params, progress: bool = True):
    """Caption the kept rows of `curated_dir/ledger.jsonl` into `out_dir/dataset.jsonl`, copy the ledger
    next to it, and return a CaptionSummary (also written to `out_dir/caption_summary.json`)."""
    curated_dir, out_dir = Path(curated_dir), Path(out_dir)
    rows = read_ledger(curated_dir / LEDGER_FILE)
    kept = [row for row in rows if row.status == KEPT]
    out_dir.mkdir(parents=True, exist_ok=True)
    captioner = make_captioner(params)
    started = time.monotonic()
    records, failures = [], []
    try:
        for row in tqdm(kept, desc=f"caption ({captioner.name})", unit="video", disable=not progress):
            scratch = Path(tempfile.mkdtemp(prefix="caption-"))
            try:
                records.append(
                    caption_one(captioner, row, _local_copy(row, curated_dir, params, scratch), params)
                )
            except KangarooError as err:  # CaptionError, VideoError, StorageError: this video only
                log.warning("%s: not captioned: %s", row.key, err)
                failures.append({"video": row.video, "key": row.key, "error": str(err)})
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
    finally:
        captioner.close()
    seconds = time.monotonic() - started
    _write_jsonl(out_dir / DATASET_FILE, records)
    _write_jsonl(out_dir / FAILURES_FILE, failures)
    if (curated_dir / LEDGER_FILE).resolve() != (out_dir / LEDGER_FILE).resolve():
        shutil.copyfile(curated_dir / LEDGER_FILE, out_dir / LEDGER_FILE)
    summary = CaptionSummary(
        captioner=captioner.name,
        num_ledger_rows=len(rows),
        num_kept=len(kept),
        captioned=len(records),
        failed=len(failures),
        seconds=round(seconds, 3),
        videos_per_minute=round(60 * len(kept) / seconds, 2) if seconds > 0 else 0.0,
    )
    if summary.captioned + summary.failed != summary.num_kept:
        raise CaptionError(
            f"{out_dir}: {summary.num_kept} kept but {summary.captioned} + {summary.failed} accounted"
        )
    (out_dir / CAPTION_SUMMARY_FILE).write_text(json.dumps(asdict(summary), indent=2) + "\n")
    return summary


def _write_jsonl(path: Path, records: list[dict]) -> None:
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(record) + "\n" for record in records))
    tmp.replace(path)


def show_caption_summary(summary: CaptionSummary) -> None:
    table = Table(title=f"captioning ({summary.captioner})")
    table.add_column("outcome")
    table.add_column("videos", justify="right")
    table.add_row("ledger rows", str(summary.num_ledger_rows))
    table.add_row("kept", str(summary.num_kept))
    table.add_row("captioned", str(summary.captioned))
    table.add_row("failed", str(summary.failed), style="red" if summary.failed else None)
    table.caption = f"{summary.videos_per_minute:.1f} videos/min over {summary.seconds:.1f} s"
    Console(stderr=True).print(table)
