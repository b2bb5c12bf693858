"""JSONL step logs as the JSON lists `dvc plots` reads (it parses JSON, YAML, CSV and TSV, not JSONL)."""

from __future__ import annotations

import json
from pathlib import Path

from kangaroo.storage.errors import StorageError


def jsonl_to_json(jsonl: str | Path, out: str | Path | None = None) -> Path:
    """Write the rows of `jsonl` as one JSON list to `out` (default: same name, `.json`); returns `out`."""
    jsonl = Path(jsonl)
    target = Path(out) if out is not None else jsonl.with_suffix(".json")
    try:
        rows = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as err:
        raise StorageError(f"{jsonl}: not a readable JSONL file ({err})") from err
    target.write_text(json.dumps(rows) + "\n")
    return target
