"""Curate one shard with a pool of worker processes (one per core), and merge shard ledgers.

`curate_shard` is what a KFP task calls for its shard; `kangaroo curate` calls it per shard and merges.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from kangaroo.config import Params
from kangaroo.curation.evaluate import VideoTask, evaluate_video
from kangaroo.curation.filters import build_filters, warm_up
from kangaroo.curation.ledger import (
    DECODE_ERROR,
    KEPT,
    LEDGER_FILE,
    REJECTED,
    TIMEOUT,
    LedgerRow,
    ShardSummary,
    check_accounting,
    summarise,
    write_ledger,
)
from kangaroo.curation.manifest import input_key, is_s3
from kangaroo.curation.pool import CRASHED, ERROR, OK, DeadlinePool

log = logging.getLogger(__name__)


def _common_root(inputs: Sequence[str]) -> str:
    if all(is_s3(i) for i in inputs):
        return "s3://" + os.path.commonpath([i[len("s3://") :] for i in inputs]).split("/")[0]
    return os.path.commonpath([os.path.dirname(i) for i in inputs])


def _row_for(
    task: VideoTask, status: str, value: LedgerRow | None, error: str | None, filter_names: list[str]
) -> LedgerRow:
    if status == OK:
        return value
    # The worker timed out, died or raised: no score is known, but the row still names every filter.
    reason = TIMEOUT if status not in (ERROR, CRASHED) else DECODE_ERROR
    return LedgerRow(
        video=task.video,
        key=task.key,
        status=REJECTED,
        reason=reason,
        error=f"{task.video}: {error}",
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
    workers = min(settings.workers or os.cpu_count() or 1, max(1, len(tasks)))
    pool = DeadlinePool(
        evaluate_video, workers, settings.video_timeout_s, settings.start_method, partial(warm_up, settings)
    )
    filter_names = [f.name for f in build_filters(settings)]
    started = time.monotonic()
    rows: list[LedgerRow] = []
    with tqdm(total=len(tasks), desc=f"curate shard {shard}", unit="video", disable=not progress) as bar:
        for outcome in pool.map_unordered(tasks):
            task = tasks[outcome.index]
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
    )
    return table


def show_summary(summary: ShardSummary) -> None:
    Console(stderr=True).print(summary_table(summary))
