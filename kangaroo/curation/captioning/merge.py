"""Merge per-shard caption folders into one dataset folder, checking that every kept video of the merged
ledger is captioned or listed as a caption failure, exactly once."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from kangaroo.curation.captioning.base import CaptionError
from kangaroo.curation.captioning.dataset import (
    CAPTION_SUMMARY_FILE,
    DATASET_FILE,
    FAILURES_FILE,
    CaptionSummary,
    check_caption_accounting,
    kept_rows,
)
from kangaroo.curation.ledger import LEDGER_FILE, read_ledger


def _concatenate(sources: list[Path], target: Path) -> set[str]:
    """Stream the rows of `sources` into `target`; returns their keys, raising on a key seen twice."""
    keys: set[str] = set()
    tmp = target.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as out:
        for source in sources:
            if not source.is_file():
                raise CaptionError(f"{source}: missing (was the shard captioned?)")
            with source.open(encoding="utf-8") as lines:
                for number, line in enumerate(lines, start=1):
                    if not line.strip():
                        continue
                    try:
                        key = json.loads(line)["key"]
                    except (json.JSONDecodeError, KeyError, TypeError) as err:
                        raise CaptionError(f"{source}:{number}: not a row with a key: {err}") from err
                    if key in keys:
                        raise CaptionError(f"{source}:{number}: key {key!r} already came from another shard")
                    keys.add(key)
                    out.write(line if line.endswith("\n") else line + "\n")
    tmp.replace(target)
    return keys


def merge_captions(
    shard_dirs: Sequence[str | Path], curated_dir: str | Path, out_dir: str | Path
) -> CaptionSummary:
    """Concatenate the shards' dataset.jsonl and caption_failures.jsonl into `out_dir`, copy the merged
    ledger beside them, and return the merged CaptionSummary (also written to caption_summary.json)."""
    shard_dirs = [Path(d) for d in shard_dirs]
    curated_dir, out_dir = Path(curated_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ledger = read_ledger(curated_dir / LEDGER_FILE)
    captioned = _concatenate([d / DATASET_FILE for d in shard_dirs], out_dir / DATASET_FILE)
    failed = _concatenate([d / FAILURES_FILE for d in shard_dirs], out_dir / FAILURES_FILE)
    kept = {row.key for row in kept_rows(ledger, None)}
    check_caption_accounting(
        kept, captioned, failed, f"merging {len(shard_dirs)} caption shards into {out_dir}"
    )
    shard_summaries = [
        json.loads((d / CAPTION_SUMMARY_FILE).read_text())
        for d in shard_dirs
        if (d / CAPTION_SUMMARY_FILE).is_file()
    ]
    seconds = sum(s.get("seconds", 0.0) for s in shard_summaries)
    summary = CaptionSummary(
        captioner=",".join(sorted({s["captioner"] for s in shard_summaries})) or "none",
        num_ledger_rows=len(ledger),
        num_kept=len(kept),
        captioned=len(captioned),
        failed=len(failed),
        seconds=round(seconds, 3),
        videos_per_minute=round(60 * len(kept) / seconds, 2) if seconds > 0 else 0.0,
        shard=None,
        resumed=sum(s.get("resumed", 0) for s in shard_summaries),
    )
    if (curated_dir / LEDGER_FILE).resolve() != (out_dir / LEDGER_FILE).resolve():
        shutil.copyfile(curated_dir / LEDGER_FILE, out_dir / LEDGER_FILE)
    summary.write(out_dir)
    return summary
