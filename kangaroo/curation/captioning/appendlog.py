"""Append-only JSON Lines that survive a kill: each row is flushed when written, and reopening drops a torn
last line and reports the keys already there, so a resumed task skips them."""

from __future__ import annotations

import json
import os
from pathlib import Path

from kangaroo.errors import KangarooError


class AppendLog:
    """`path` opened for appending rows keyed by `row["key"]`; `keys` holds every key already written."""

    def __init__(self, path: Path, error: type[KangarooError] = KangarooError) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.keys: set[str] = set()
        if self.path.is_file():
            self._recover(error)
        self._handle = self.path.open("a", encoding="utf-8")

    def _recover(self, error: type[KangarooError]) -> None:
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]  # a row cut short by a kill has no newline yet
        if len(complete) != len(data):
            with self.path.open("r+b") as handle:
                handle.truncate(len(complete))
        for number, line in enumerate(complete.decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                self.keys.add(json.loads(line)["key"])
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise error(f"{self.path}:{number}: not a row with a key: {err}") from err

    def append(self, row: dict) -> None:
        self._handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())  # a pod killed right after still finds the row on its volume
        self.keys.add(row["key"])

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> AppendLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
