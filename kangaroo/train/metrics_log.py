"""Training metrics to `metrics.jsonl` (DVC plots read it) and TensorBoard, written by rank 0 only."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from kangaroo.errors import KangarooError

log = logging.getLogger(__name__)


class MetricsLogError(KangarooError):
    """metrics.jsonl is damaged before its last line, so a resume cannot trust it."""


class MetricsLog:
    """Append-only JSONL + TensorBoard scalars. On resume, rows after the resumed step are dropped first,
    so the file holds exactly one row per logged step, as an uninterrupted run would."""

    def __init__(self, out_dir: Path, enabled: bool, resume_step: int | None = None) -> None:
        self.path = out_dir / "metrics.jsonl"
        self.enabled = enabled
        self._writer = None
        if not enabled:
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            self.path.write_text("")
        else:
            kept = [json.dumps(row) for row in self._rows_for_resume() if row["step"] <= resume_step]
            self.path.write_text("".join(line + "\n" for line in kept))
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(out_dir / "tensorboard"), purge_step=resume_step)

    def _rows_for_resume(self) -> list[dict[str, Any]]:
        """Rows of the previous attempt. Its last line may be torn (the process died mid-write): that line
        is dropped. A bad line anywhere else is damage, not an interruption: MetricsLogError names it."""
        lines = self._lines()
        rows = []
        for number, line in enumerate(lines, start=1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                if number == len(lines):
                    log.warning("%s: dropping the torn last line %d on resume: %r", self.path, number, line)
                    break
                raise MetricsLogError(f"{self.path}:{number}: not a JSON row ({err})") from err
        return rows

    def _lines(self) -> list[str]:
        if not self.path.is_file():
            return []
        return [line for line in self.path.read_text().splitlines() if line.strip()]

    def log(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        for key, value in row.items():
            if key != "step" and isinstance(value, int | float):
                self._writer.add_scalar(f"train/{key}", value, global_step=row["step"])

    def rows(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self._lines()]

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
