"""`kangaroo validate` through the console script's `main()`: exit codes and a message naming the failed
expectations. In-process, so the GX context is shared with the gate tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from test_quality_gate import ROWS, ledger_for, with_captions, write_dataset


def validate_args(project_root: Path, dataset: Path, report: Path, *extra: str) -> list[str]:
    return ["validate", str(dataset), "--report", str(report), "--params", str(project_root / "params.yaml"),
            "--profile", "tiny", *extra]  # fmt: skip


def run_main_in_process(monkeypatch, args: list[str]) -> int:
    from kangaroo.cli import main

    monkeypatch.setattr(sys, "argv", ["kangaroo", *args])
    with pytest.raises(SystemExit) as stopped:
        main()
    return stopped.value.code


def test_failing_gate_exits_1_naming_failed_expectations(
    project_root: Path, tmp_path: Path, monkeypatch, capsys
):
    bad_rows = with_captions(ROWS, {2: "As an AI I cannot see videos, sorry about that.", 3: None})
    bad = write_dataset(tmp_path / "bad", bad_rows, ledger_for(bad_rows, rejected=12))
    args = validate_args(project_root, bad, tmp_path / "report", "--set", "quality.min_rows=50")
    code = run_main_in_process(monkeypatch, args)
    captured = capsys.readouterr()
    output = " ".join((captured.err + captured.out).split())  # rich wraps long lines
    assert code == 1, output
    assert "quality gate FAILED" in output
    for name in ("caption_no_boilerplate", "caption_not_null", "row_count"):
        assert name in output
    assert "great_expectations._docs_decorators" not in output
    assert "`clip_0002`" in (tmp_path / "report" / "summary.md").read_text()


def test_clean_dataset_exits_0(project_root: Path, tmp_path: Path, monkeypatch):
    clean = write_dataset(tmp_path / "clean", ROWS, ledger_for(ROWS, rejected=12))
    code = run_main_in_process(monkeypatch, validate_args(project_root, clean, tmp_path / "report"))
    assert code in (0, None)
    assert json.loads((tmp_path / "report" / "result.json").read_text())["success"] is True


def test_missing_ledger_exits_2_naming_the_file(project_root: Path, tmp_path: Path, monkeypatch, capsys):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "dataset.jsonl").write_text(json.dumps(ROWS[0]) + "\n")
    code = run_main_in_process(monkeypatch, validate_args(project_root, tmp_path / "half", tmp_path / "r"))
    captured = capsys.readouterr()
    output = " ".join((captured.err + captured.out).split())
    assert code == 2
    assert "DatasetError" in output and "ledger.jsonl: file not found" in output
