"""Curate one shard with a pool of worker processes (one per core), and merge shard ledgers.

`curate_shard` is what a KFP task calls for its shard; `kangaroo curate` calls it per shard and merges.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from contextlib import closing
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from kangaroo.config import Params
from kangaroo.curation.cpus import available_cpus
from kangaroo.curation.evaluate import VideoTask, evaluate_video
from kangaroo.curation.filters import build_filters, warm_up
from kangaroo.curation.ledger import (
    DECODE_ERROR,
    INTERNAL_ERROR,
    KEPT,
    LEDGER_FILE,
    OUTSIDE_INPUT,
    REJECTED,
    RESOURCE_LIMIT,
    TIMEOUT,
    LedgerRow,
    ShardSummary,
    check_accounting,
    summarise,
    write_ledger,
)
from kangaroo.curation.manifest import input_key, is_s3, outside_root
from kangaroo.curation.pool import CRASHED, ERROR, FAILED, OK, DeadlinePool
from kangaroo.curation.pool import RESOURCE_LIMIT as OVER_LIMIT
from kangaroo.errors import InfrastructureError

log = logging.getLogger(__name__)


def _common_root(inputs: Sequence[str]) -> str:
    if all(is_s3(i) for i in inputs):
        return "s3://" + os.path.commonpath([i[len("s3://") :] for i in inputs]).split("/")[0]
    return os.path.commonpath([os.path.dirname(i) for i in inputs])


# A pool outcome that is not a row of the worker's own -> the rejection reason. A crash is the decoder dying
# on the file's bytes; an exception of ours is a bug, kept apart from decode errors.
_REASON_OF_STATUS = {CRASHED: DECODE_ERROR, ERROR: INTERNAL_ERROR, OVER_LIMIT: RESOURCE_LIMIT}


def _row_for(
    task: VideoTask, status: str, value: LedgerRow | None, error: str | None, filter_names: list[str]
) -> LedgerRow:
    if status == OK:
        return value
    if status == FAILED:
        # Storage/network/disk, after the retry budget: the shard fails (KFP retries it), no row is written.
        raise InfrastructureError(f"shard {task.shard}: {task.key}: {error}")
    # The worker timed out, died or raised: no score is known, but the row still names every filter.
    return _rejected_row(task, _REASON_OF_STATUS.get(status, TIMEOUT), f"{task.video}: {error}", filter_names)


def _rejected_row(task: VideoTask, reason: str, error: str, filter_names: list[str]) -> LedgerRow:
    return LedgerRow(
        video=task.video,
        key=task.key,
        status=REJECTED,
        reason=reason,
        error=error,
        scores={name: None for name in filter_names},
        shard=task.shard,
    )


def curate_shard(
    inputs: Sequence[str],
    out_dir: str | Path,
    params: Params,
    shard: int = 0,
    source: str | None = None,
    every_frame: bool = False,
    progress: bool = True,
) -> ShardSummary:
    """Judge every input, write `out_dir/ledger.jsonl` (+ summary.json) and return the counts.

    `source` is the folder or prefix the inputs were listed from (ledger keys are relative to it; default:
    their common parent). Raises LedgerError if the ledger would not hold exactly one row per input.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = params.curation
    root = source or (_common_root(inputs) if inputs else "")
    tasks = [VideoTask(v, input_key(root, v), shard, params, every_frame) for v in inputs]
    filter_names = [f.name for f in build_filters(settings)]
    rows: list[LedgerRow] = []
    # A symlink out of the input folder is never opened: its row is written here, not by a worker.
    to_decode = []
    for task in tasks:
        target = None if is_s3(task.video) else outside_root(root, task.video)
        if target is None:
            to_decode.append(task)
        else:
            error = f"{task.video}: symlink to {target}, outside the input folder {root}"
            rows.append(_rejected_row(task, OUTSIDE_INPUT, error, filter_names))
    workers = min(settings.workers or available_cpus(), max(1, len(to_decode)))
    pool = DeadlinePool(
        evaluate_video,
        workers,
        settings.video_timeout_s,
        settings.start_method,
        partial(warm_up, settings),
        memory_limit_mb=settings.worker_memory_mb or None,
        fail_on=(InfrastructureError,),
    )
    started = time.monotonic()
    with tqdm(total=len(tasks), desc=f"curate shard {shard}", unit="video", disable=not progress) as bar:
        bar.update(len(rows))
        outcomes = pool.map_unordered(to_decode)
        with closing(outcomes):  # an abort (InfrastructureError) stops the workers at once
            for outcome in outcomes:
                task = to_decode[outcome.index]
                rows.append(_row_for(task, outcome.status, outcome.value, outcome.error, filter_names))
                if outcome.status != OK:
                    log.warning("%s: %s: %s", task.key, outcome.status, outcome.error)
                bar.update()
    seconds = time.monotonic() - started
    rows.sort(key=lambda row: row.key)
    check_accounting([t.key for t in tasks], rows, f"shard {shard} ({out_dir})")
    write_ledger(out_dir / LEDGER_FILE, rows)
    summary = summarise(rows, shard, len(tasks), seconds, out_dir / LEDGER_FILE)
    summary.workers_replaced = pool.replaced
    summary.peak_worker_rss_mb = round(pool.peak_rss_kb / 1024, 1)
    summary.write(out_dir)
    return summary


def summary_table(summary: ShardSummary) -> Table:
    """Kept/rejected per reason, and throughput, as a rich table."""
    title = "curation" if summary.shard is None else f"curation, shard {summary.shard}"
    table = Table(title=title)
    table.add_column("outcome")
    table.add_column("videos", justify="right")
    table.add_column("share", justify="right")
    total = max(1, summary.num_inputs)
    for reason, count in sorted(summary.reasons.items(), key=lambda item: (item[0] != KEPT, item[0])):
        label = KEPT if reason == KEPT else f"rejected: {reason}"
        table.add_row(label, str(count), f"{100 * count / total:.1f}%")
    table.add_row("total", str(summary.num_inputs), "100.0%", style="bold")
    table.caption = (
        f"{summary.videos_per_minute:.1f} videos/min over {summary.seconds:.1f} s of worker time"
        + (
            f"; {summary.workers_replaced} workers replaced after timeouts/crashes"
            if summary.workers_replaced
            else ""
        )
        + (f"; peak worker RSS {summary.peak_worker_rss_mb:.0f} MB" if summary.peak_worker_rss_mb else "")
    )
    return table


def show_summary(summary: ShardSummary) -> None:
    Console(stderr=True).print(summary_table(summary))
