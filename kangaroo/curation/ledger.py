"""The curation ledger: exactly one row per input file, `kept` or `rejected`, with scores and the reason.

Format (docs/data-formats.md): `{"video", "key", "status", "reason", "error", "scores", "duration", "fps",
"width", "height", "shard"}`. Every writer checks that counts in == kept + rejected and raises otherwise.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kangaroo.errors import KangarooError
from kangaroo.jsonl import read_jsonl

LEDGER_FILE = "ledger.jsonl"
SUMMARY_FILE = "summary.json"
KEPT, REJECTED = "kept", "rejected"
DECODE_ERROR, TIMEOUT = "decode_error", "timeout"
RESOURCE_LIMIT = "resource_limit"  # over the header limits (pixels, frames, duration) or the worker's memory
OUTSIDE_INPUT = "outside_input"  # a symlink whose target lies outside the input folder: never opened
INTERNAL_ERROR = "internal_error"  # our code raised on this input: a bug to fix, not a verdict on the bytes


class LedgerError(KangarooError):
    """The ledger lost, duplicated or invented a video, or a ledger file is unreadable."""


@dataclass
class LedgerRow:
    video: str
    key: str
    status: str
    reason: str | None = None
    error: str | None = None
    scores: dict[str, float | None] = field(default_factory=dict)
    duration: float | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    shard: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=False)


def check_accounting(input_keys: list[str], rows: list[LedgerRow], where: str) -> None:
    """Raise unless every input has exactly one row with status kept or rejected, and nothing else does."""
    seen = Counter(row.key for row in rows)
    duplicated = sorted(k for k, n in seen.items() if n > 1)
    missing = sorted(set(input_keys) - set(seen))
    extra = sorted(set(seen) - set(input_keys))
    bad_status = sorted(row.key for row in rows if row.status not in (KEPT, REJECTED))
    kept = sum(row.status == KEPT for row in rows)
    rejected = sum(row.status == REJECTED for row in rows)
    if duplicated or missing or extra or bad_status or kept + rejected != len(input_keys):
        raise LedgerError(
            f"{where}: {len(input_keys)} inputs but {kept} kept + {rejected} rejected; "
            f"missing={missing[:5]} duplicated={duplicated[:5]} unexpected={extra[:5]} "
            f"bad_status={bad_status[:5]}"
        )


def write_ledger(path: Path, rows: list[LedgerRow]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(row.to_json() + "\n" for row in rows))
    tmp.replace(path)  # atomic: a reader never sees half a ledger


def read_ledger(path: Path) -> list[LedgerRow]:
    """Rows of a ledger.jsonl; LedgerError naming the file and line if one is malformed."""
    rows = []
    for number, record in enumerate(read_jsonl(path, LedgerError), start=1):
        try:
            rows.append(LedgerRow(**record))
        except TypeError as err:
            raise LedgerError(f"{path}: row {number} is not a ledger row: {err}") from err
    return rows


def reason_counts(rows: list[LedgerRow]) -> Counter:
    """Counter over `kept` and each rejection reason."""
    return Counter(KEPT if row.status == KEPT else (row.reason or "unknown") for row in rows)


@dataclass
class ShardSummary:
    """Counts of one shard (or of a merged run) and its throughput."""

    shard: int | None
    num_inputs: int
    kept: int
    rejected: int
    reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    videos_per_minute: float = 0.0
    workers_replaced: int = 0
    peak_worker_rss_mb: float = 0.0
    ledger: str = ""

    def write(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / SUMMARY_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")


def summarise(rows: list[LedgerRow], shard: int | None, num_inputs: int, seconds: float, ledger: Path):
    kept = sum(row.status == KEPT for row in rows)
    return ShardSummary(
        shard=shard,
        num_inputs=num_inputs,
        kept=kept,
        rejected=len(rows) - kept,
        reasons=dict(sorted(reason_counts(rows).items())),
        seconds=round(seconds, 3),
        videos_per_minute=round(60.0 * num_inputs / seconds, 2) if seconds > 0 else 0.0,
        ledger=str(ledger),
    )


def merge_ledgers(shard_dirs: Sequence[str | Path], out_dir: str | Path) -> dict:
    """Concatenate shard ledgers into `out_dir/ledger.jsonl` (sorted by key); returns the merged summary
    (ShardSummary fields, shard None) as a dict, also written to `out_dir/summary.json`.

    Raises LedgerError if two shards hold the same key, or if a shard's ledger has fewer or more rows than
    that shard's summary.json says it had inputs.
    """
    out_dir = Path(out_dir)
    rows: list[LedgerRow] = []
    expected = 0
    seconds = 0.0
    replaced = 0
    peak_rss = 0.0
    for shard_dir in map(Path, shard_dirs):
        shard_rows = read_ledger(shard_dir / LEDGER_FILE)
        summary_path = shard_dir / SUMMARY_FILE
        if summary_path.is_file():
            shard_summary = json.loads(summary_path.read_text())
            if shard_summary["num_inputs"] != len(shard_rows):
                raise LedgerError(
                    f"{shard_dir}: summary says {shard_summary['num_inputs']} inputs, "
                    f"ledger has {len(shard_rows)} rows"
                )
            seconds += shard_summary.get("seconds", 0.0)
            replaced += shard_summary.get("workers_replaced", 0)
            peak_rss = max(peak_rss, shard_summary.get("peak_worker_rss_mb", 0.0))
        expected += len(shard_rows)
        rows.extend(shard_rows)
    keys = [row.key for row in rows]
    if len(set(keys)) != expected:
        raise LedgerError(f"merging {len(shard_dirs)} shards into {out_dir}: duplicated keys across shards")
    check_accounting(keys, rows, f"merged ledger {out_dir}")
    rows.sort(key=lambda row: row.key)
    write_ledger(out_dir / LEDGER_FILE, rows)
    summary = summarise(rows, None, len(rows), seconds, out_dir / LEDGER_FILE)
    summary.workers_replaced = replaced
    summary.peak_worker_rss_mb = peak_rss
    summary.write(out_dir)
    return asdict(summary)
