"""Captioning with the object store failing: the shard fails (exit 75, KFP retries it) instead of recording
the videos as caption failures, and the retry after the store is back captions every video."""

# ruff: noqa: F811  (pytest fixtures imported from s3_server / s3_faults are used as test arguments)

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from curation_helpers import tiny_params
from hostile_media import write_moving_clip
from s3_faults import failing_reads  # noqa: F401  (pytest fixture)
from s3_server import s3_bucket, s3_server  # noqa: F401  (pytest fixtures)

from kangaroo.curation.captioning import caption_shard
from kangaroo.curation.ledger import LedgerRow, write_ledger
from kangaroo.errors import InfrastructureError

ROOT = Path(__file__).resolve().parents[1]
NUM_VIDEOS = 3
KANGAROO = str(Path(sys.executable).parent / "kangaroo")  # the console script of this venv


@pytest.fixture
def curated_on_s3(s3_server, s3_bucket, tmp_path, monkeypatch) -> Path:
    """A ledger of three kept clips (with caption sidecars) that live in the store."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    client = s3_server.boto_client()
    rows = []
    for i in range(NUM_VIDEOS):
        clip = write_moving_clip(tmp_path / f"clip_{i}.mp4")
        clip.with_suffix(".txt").write_text(f"A red square number {i} moves right.\n")
        client.upload_file(str(clip), s3_bucket, f"curated/clip_{i}.mp4")
        client.upload_file(str(clip.with_suffix(".txt")), s3_bucket, f"curated/clip_{i}.txt")
        rows.append(LedgerRow(f"s3://{s3_bucket}/curated/clip_{i}.mp4", f"clip_{i}.mp4", "kept", duration=2.0,
                              fps=10.0, width=160, height=120, shard=0))  # fmt: skip
    folder = tmp_path / "curated"
    write_ledger(folder / "ledger.jsonl", rows)
    return folder


def _storage_overrides(endpoint: str) -> list[str]:
    return [
        f"storage.endpoint={endpoint}",
        "storage.max_attempts=3",
        "storage.retry_budget_s=5",
        "storage.backoff_s=0.05",
        "storage.backoff_max_s=0.2",
    ]


def _lines(path: Path) -> list[dict]:
    return (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    )


def test_store_down_fails_the_caption_shard_and_the_retry_captions_everything(
    curated_on_s3, failing_reads, tmp_path
):
    params = tiny_params(*_storage_overrides(failing_reads.server.endpoint))
    out = tmp_path / "captioned"
    failing_reads.fail_reads = True
    with pytest.raises(InfrastructureError, match="could not fetch the kept video"):
        caption_shard(curated_on_s3, out, params, shard=0)
    assert failing_reads.refused_reads >= 3
    # nothing recorded as the videos' own failure: a retry must not skip them
    assert _lines(out / "caption_failures.jsonl") == [] and _lines(out / "dataset.jsonl") == []

    failing_reads.fail_reads = False  # the store is back: the retried task captions every video
    summary = caption_shard(curated_on_s3, out, params, shard=0)
    assert (summary.captioned, summary.failed) == (NUM_VIDEOS, 0)
    assert sorted(row["key"] for row in _lines(out / "dataset.jsonl")) == [
        f"clip_{i}.mp4" for i in range(NUM_VIDEOS)
    ]
    assert _lines(out / "caption_failures.jsonl") == []


def test_caption_cli_exits_75_when_the_store_is_down(curated_on_s3, failing_reads, tmp_path):
    failing_reads.fail_reads = True
    sets = [arg for item in _storage_overrides(failing_reads.server.endpoint) for arg in ("--set", item)]
    args = ["caption", "--curated", str(curated_on_s3), "--shard", "0", "--out", str(tmp_path / "out")]
    result = subprocess.run(
        [KANGAROO, *args, "--params", str(ROOT / "params.yaml"), "--profile", "tiny", *sets],
        capture_output=True,
        text=True,
        env=dict(os.environ),  # the store's credentials (set by the fixture)
        timeout=600,
    )
    output = " ".join((result.stdout + result.stderr).split())  # the log handler wraps long lines
    assert result.returncode == 75, output[-3000:]  # EX_TEMPFAIL: KFP retries the task
    assert "InfrastructureError" in output and "could not fetch the kept video" in output
    assert "Traceback" not in output
    assert _lines(tmp_path / "out" / "caption_failures.jsonl") == []
