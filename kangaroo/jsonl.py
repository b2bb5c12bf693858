"""JSON Lines, the format every stage writes (ledger, dataset, questions, predictions)."""

import json
from pathlib import Path
from typing import Any

from kangaroo.errors import KangarooError


def read_jsonl(path: str | Path, error: type[KangarooError] = KangarooError) -> list[dict[str, Any]]:
    """The objects of a JSONL file, blank lines skipped; raises `error` naming the file (and line) when the
    file is missing or a line is not a JSON object."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: file not found")
    records = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise error(f"{path}:{number}: not valid JSON: {err.msg}") from err
            if not isinstance(record, dict):
                raise error(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
            records.append(record)
    return records
