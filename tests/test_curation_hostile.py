"""Curation over hostile uploads and a failing object store (issue 21), through the real CLI and runner.

Every input ends up in the ledger with a reason, nothing foreign is kept, workers stay small; and when the
store cannot be read, the shard fails (non-zero exit, no ledger) instead of rejecting the videos.
"""
# ruff: noqa: F811  (pytest fixtures imported from s3_server / s3_faults are used as test arguments)

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from curation_helpers import tiny_params
from hostile_media import (
    write_concat_list,
    write_moving_clip,
    write_pixel_bomb,
    write_playlist,
    write_png_bomb,
)
from s3_faults import failing_reads  # noqa: F401  (pytest fixture)
from s3_server import flaky_proxy, s3_bucket, s3_server  # noqa: F401  (pytest fixtures)

from kangaroo.curation.ledger import read_ledger
from kangaroo.curation.manifest import list_inputs
from kangaroo.curation.runner import curate_shard
from kangaroo.errors import InfrastructureError

ROOT = Path(__file__).resolve().parents[1]
KANGAROO = str(Path(sys.executable).with_name("kangaroo"))
FOREIGN_SIZE = (208, 144)  # only the foreign file has frames of this size
RSS_BUDGET_MB = 700


@pytest.fixture(scope="module")
def private(tmp_path_factory) -> Path:
    """Files outside the upload folder that an attacker would like curation to read."""
    folder = tmp_path_factory.mktemp("private")
    write_moving_clip(folder / "secret.mp4", *FOREIGN_SIZE, color=(30, 200, 220))
    return folder


@pytest.fixture(scope="module")
def pixel_bomb(tmp_path_factory) -> Path:
    return write_pixel_bomb(tmp_path_factory.mktemp("bomb") / "bomb.mp4")


@pytest.fixture(scope="module")
def uploads(tmp_path_factory, private, pixel_bomb) -> Path:
    """Good clips mixed with every hostile upload of issue 21."""
    folder = tmp_path_factory.mktemp("uploads")
    secret = private / "secret.mp4"
    write_moving_clip(folder / "good_0.mp4")
    write_moving_clip(folder / "nested" / "good_1.mp4", color=(240, 230, 60))
    write_playlist(folder / "playlist.m3u8", secret)
    write_playlist(folder / "holiday.mp4", secret)  # a playlist named like a video
    write_concat_list(folder / "splice.mp4", secret)
    (folder / "bomb.mp4").write_bytes(pixel_bomb.read_bytes())
    write_png_bomb(folder / "bomb.png")
    (folder / "leak.mp4").symlink_to(secret)  # points out of the upload folder
    (folder / "private_dir").symlink_to(private, target_is_directory=True)
    (folder / "again.mp4").symlink_to(folder / "good_0.mp4")  # the same upload twice
    return folder


def _run_cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [KANGAROO, *args], capture_output=True, text=True, env=env or dict(os.environ), timeout=1200
    )


def test_mixed_hostile_folder_ends_in_the_ledger_with_reasons(uploads, tmp_path):
    out = tmp_path / "curated"
    result = _run_cli(
        ["curate", "--input", str(uploads), "--out", str(out), "--params", str(ROOT / "params.yaml")]
        + [
            "--profile",
            "tiny",
            "--set",
            "curation.video_timeout_s=900",
            "--set",
            "video.decode_timeout_s=900",
        ]
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Traceback" not in output
    rows = {row.key: row for row in read_ledger(out / "ledger.jsonl")}
    reasons = {key: row.reason for key, row in rows.items() if row.status == "rejected"}
    # One row per upload; the duplicate link shares good_0.mp4's row.
    assert sorted(rows) == sorted(
        ["good_0.mp4", "nested/good_1.mp4", "playlist.m3u8", "holiday.mp4", "splice.mp4", "bomb.mp4"]
        + ["bomb.png", "leak.mp4", "private_dir"]
    )
    assert reasons == {
        "playlist.m3u8": "decode_error",
        "holiday.mp4": "decode_error",
        "splice.mp4": "decode_error",
        "bomb.mp4": "resource_limit",
        "bomb.png": "decode_error",
        "leak.mp4": "outside_input",
        "private_dir": "outside_input",
    }
    assert "allowed container" in rows["playlist.m3u8"].error and "8192x8192" in rows["bomb.mp4"].error
    assert {k for k, r in rows.items() if r.status == "kept"} == {"good_0.mp4", "nested/good_1.mp4"}
    # Nothing of the foreign file reached any output: no row carries its frame size or its path as data.
    assert all((row.width, row.height) != FOREIGN_SIZE for row in rows.values())
    assert all(
        row.width is None for key, row in rows.items() if key not in ("good_0.mp4", "nested/good_1.mp4")
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_inputs"] == len(rows) == summary["kept"] + summary["rejected"]
    assert 0 < summary["peak_worker_rss_mb"] < RSS_BUDGET_MB


def test_worker_memory_limit_turns_a_bomb_into_a_rejection(tmp_path, pixel_bomb):
    """Pixel cap relaxed: the bomb's decode does not fit under the worker's memory limit (refused from the
    header's size against RLIMIT_DATA); the good clip in the same worker is judged as usual."""
    folder = tmp_path / "in"
    write_moving_clip(folder / "good.mp4")
    (folder / "bomb.mp4").write_bytes(pixel_bomb.read_bytes())
    params = tiny_params(
        f"video.max_pixels={8192 * 8192}", "curation.worker_memory_mb=600", "curation.workers=1"
    )
    inputs = list_inputs(folder)
    summary = curate_shard(inputs, tmp_path / "out", params, source=str(folder), progress=False)
    rows = {row.key: row for row in read_ledger(tmp_path / "out" / "ledger.jsonl")}
    assert (rows["bomb.mp4"].status, rows["bomb.mp4"].reason) == ("rejected", "resource_limit")
    assert "left under the worker's memory limit" in rows["bomb.mp4"].error
    assert rows["good.mp4"].status == "kept"  # the same worker goes on with the next video
    assert 0 < summary.peak_worker_rss_mb < RSS_BUDGET_MB


def _upload(server, bucket: str, files: dict[str, Path]) -> None:
    client = server.boto_client()
    for key, path in files.items():
        client.upload_file(str(path), bucket, key)


def test_s3_playlist_is_refused_like_a_local_one(s3_server, s3_bucket, private, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    good = write_moving_clip(tmp_path / "good.mp4")
    playlist = write_playlist(tmp_path / "upload.m3u8", private / "secret.mp4")
    _upload(s3_server, s3_bucket, {"raw/good.mp4": good, "raw/upload.m3u8": playlist})
    params = tiny_params(f"storage.endpoint={s3_server.endpoint}", "curation.start_method=fork")
    source = f"s3://{s3_bucket}/raw"
    curate_shard(list_inputs(source, params.storage), tmp_path / "out", params, source=source, progress=False)
    rows = {row.key: row for row in read_ledger(tmp_path / "out" / "ledger.jsonl")}
    assert (rows["upload.m3u8"].reason, rows["upload.m3u8"].width) == ("decode_error", None)
    assert rows["good.mp4"].status == "kept"


def _fast_budget(endpoint: str, attempts: int, budget_s: float) -> list[str]:
    return [
        f"storage.endpoint={endpoint}",
        f"storage.max_attempts={attempts}",
        f"storage.retry_budget_s={budget_s}",
        "storage.backoff_s=0.05",
        "storage.backoff_max_s=0.5",
        "curation.start_method=fork",
    ]


def test_store_down_fails_the_shard_and_writes_no_rejection(
    s3_server, s3_bucket, flaky_proxy, tmp_path, monkeypatch
):
    # Before: every video came back `rejected / decode_error` after ~3 s and the run went on without them.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    clips = {f"raw/clip_{i}.mp4": write_moving_clip(tmp_path / f"clip_{i}.mp4") for i in range(2)}
    _upload(s3_server, s3_bucket, clips)
    params = tiny_params(*_fast_budget(flaky_proxy.server.endpoint, attempts=3, budget_s=10.0))
    source = f"s3://{s3_bucket}/raw"
    inputs = list_inputs(source, params.storage)  # listed while the store is up
    flaky_proxy.go_down()  # then it goes away and stays away
    with pytest.raises(InfrastructureError, match="endpoint unreachable after 3 attempts"):
        curate_shard(inputs, tmp_path / "out", params, source=source, progress=False)
    assert (
        not (tmp_path / "out" / "ledger.jsonl").exists() and not (tmp_path / "out" / "summary.json").exists()
    )


def test_store_restart_within_the_retry_budget_is_ridden_out(
    s3_server, s3_bucket, flaky_proxy, tmp_path, monkeypatch
):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    _upload(s3_server, s3_bucket, {"raw/clip.mp4": write_moving_clip(tmp_path / "clip.mp4")})
    params = tiny_params(*_fast_budget(flaky_proxy.server.endpoint, attempts=30, budget_s=120.0))
    source = f"s3://{s3_bucket}/raw"
    inputs = list_inputs(source, params.storage)
    flaky_proxy.cut_after(1, refuse=5)  # dies on the next request, refuses 5 connections, is back
    curate_shard(inputs, tmp_path / "out", params, source=source, progress=False)
    rows = read_ledger(tmp_path / "out" / "ledger.jsonl")
    assert [(row.key, row.status) for row in rows] == [("clip.mp4", "kept")]
    assert flaky_proxy.refused_connections >= 5


def test_cli_exits_non_zero_when_object_reads_fail(s3_server, s3_bucket, failing_reads, tmp_path):
    """The store lists but answers 503 to every object read: exit 75 (retry the step), no ledger."""
    clips = {f"raw/clip_{i}.mp4": write_moving_clip(tmp_path / f"clip_{i}.mp4") for i in range(2)}
    _upload(s3_server, s3_bucket, clips)
    failing_reads.fail_reads = True
    out = tmp_path / "curated"
    sets = _fast_budget(failing_reads.server.endpoint, attempts=4, budget_s=10.0)[:-1]
    result = _run_cli(
        [
            "curate",
            "--input",
            f"s3://{s3_bucket}/raw",
            "--out",
            str(out),
            "--params",
            str(ROOT / "params.yaml"),
        ]
        + ["--profile", "tiny"]
        + [arg for item in sets for arg in ("--set", item)],
        env=failing_reads.server.env(),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 75, output[-3000:]
    assert "Traceback" not in output
    assert "InfrastructureError" in output and "server error after 4 attempts" in output
    assert failing_reads.refused_reads >= 4
    assert not list(out.rglob("ledger.jsonl"))
