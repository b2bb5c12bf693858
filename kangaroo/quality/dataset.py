"""Read a captioned dataset folder (`dataset.jsonl` + `ledger.jsonl`, see docs/data-formats.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kangaroo.errors import KangarooError
from kangaroo.jsonl import read_jsonl

DATASET_FILE = "dataset.jsonl"
LEDGER_FILE = "ledger.jsonl"
CAPTION_FAILURES_FILE = "caption_failures.jsonl"  # written by the caption step next to dataset.jsonl


class DatasetError(KangarooError):
    """The dataset folder is missing a file or holds a line that is not a JSON object."""


@dataclass(frozen=True)
class CaptionedDataset:
    """One row per captioned video (`rows`) and one row per curation input (`ledger`)."""

    folder: Path
    rows: pd.DataFrame
    ledger: pd.DataFrame
    caption_failures: int = 0  # kept videos the caption step could not caption


def load_captioned_dataset(folder: str | Path) -> CaptionedDataset:
    """Load `folder/dataset.jsonl` and `folder/ledger.jsonl` into DataFrames (columns as in the contract)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: dataset folder not found")
    rows = pd.DataFrame.from_records(read_jsonl(folder / DATASET_FILE, DatasetError))
    ledger = pd.DataFrame.from_records(read_jsonl(folder / LEDGER_FILE, DatasetError))
    for column in ("video", "key", "caption", "frame_captions", "duration"):
        if column not in rows.columns:
            rows[column] = None
    for column in ("status", "reason"):
        if column not in ledger.columns:
            ledger[column] = None
    failures_path = folder / CAPTION_FAILURES_FILE
    failures = len(read_jsonl(failures_path, DatasetError)) if failures_path.is_file() else 0
    return CaptionedDataset(folder=folder, rows=rows, ledger=ledger, caption_failures=failures)
