"""Curation: decisions on the sample corpus, the ledger's accounting, timeouts, S3 input, real videos."""
# ruff: noqa: F811  (pytest fixtures imported from s3_server are used as test arguments)

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from curation_helpers import slow_or_dying, tiny_params
from debian_samples import debian_sample
from s3_server import s3_bucket, s3_server  # noqa: F401  (pytest fixtures)
from typer.testing import CliRunner

from kangaroo.cli import app
from kangaroo.curation.evaluate import VideoTask, evaluate_video
from kangaroo.curation.filters import TextCoverageFilter, union_area_fraction
from kangaroo.curation.ledger import LedgerError, LedgerRow, check_accounting, merge_ledgers, read_ledger
from kangaroo.curation.manifest import ManifestError, list_inputs, make_shards
from kangaroo.curation.pool import CRASHED, OK, TIMEOUT, DeadlinePool
from kangaroo.curation.runner import curate_shard
from kangaroo.curation.sharding import curate_manifest_shard, write_manifest
from kangaroo.synth.clip_plan import BAD_KINDS
from kangaroo.synth.corpus import write_corpus
from kangaroo.synth.settings import SynthSettings

ROOT = Path(__file__).resolve().parents[1]
NUM_VIDEOS = 40
PLANTED_BAD = BAD_KINDS  # every kind of bad input the sample corpus plants


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    write_corpus(
        out,
        SynthSettings(
            seed=3,
            num_videos=NUM_VIDEOS,
            num_images=4,
            long_video_seconds=30.0,
            num_motion_clips=0,
            shape_radius_fraction=0.12,
        ),
    )
    return out


@pytest.fixture(scope="module")
def truth(corpus) -> dict[str, dict]:
    rows = [json.loads(line) for line in (corpus / "ground_truth.jsonl").read_text().splitlines()]
    return {row["video"].removeprefix("videos/"): row for row in rows}


@pytest.fixture(scope="module")
def curated(corpus, tmp_path_factory) -> Path:
    """The whole corpus through the real CLI, in 3 shards merged into one ledger."""
    out = tmp_path_factory.mktemp("curated")
    args = [
        "curate",
        "--input",
        str(corpus / "videos"),
        "--out",
        str(out),
        "--params",
        str(ROOT / "params.yaml"),
    ]
    # A generous deadline: on a machine shared with other jobs a timeout must not change a decision.
    args += ["--set", "curation.shard_size=15", "--set", "curation.video_timeout_s=900"]
    args += ["--set", "video.decode_timeout_s=900"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output[-3000:]
    assert "videos/min" in result.output  # the summary table
    return out


def test_every_planted_clip_rejected_for_its_reason_and_good_clips_kept(curated, truth):
    rows = read_ledger(curated / "ledger.jsonl")
    assert sorted(r.key for r in rows) == sorted(truth)  # one row per file, no more, no less
    by_key = {r.key: r for r in rows}
    for key, expected in truth.items():
        row = by_key[key]
        if expected["kind"] in PLANTED_BAD:
            assert (row.status, row.reason) == ("rejected", expected["expected_reason"]), (key, row)
    good = [k for k, t in truth.items() if t["expected_status"] == "kept"]
    kept = [k for k in good if by_key[k].status == "kept"]
    assert len(kept) >= 0.95 * len(good), [by_key[k] for k in good if k not in kept]
    assert {t["kind"] for t in truth.values()} >= set(PLANTED_BAD)


def test_ledger_rows_follow_the_contract(curated, truth):
    lines = (curated / "ledger.jsonl").read_text().splitlines()
    filters = {"duration", "resolution", "aspect_ratio", "static_scene", "face_coverage", "text_coverage"}
    for line in lines:
        row = json.loads(line)
        assert set(row) == {
            "video",
            "key",
            "status",
            "reason",
            "error",
            "scores",
            "duration",
            "fps",
            "width",
            "height",
            "shard",
        }
        assert Path(row["video"]).is_absolute() and row["video"].endswith(row["key"])
        assert row["shard"] in (0, 1, 2)
        assert set(row["scores"]) == filters
        if row["reason"] in ("decode_error", "timeout"):
            assert row["error"] and row["key"] in row["error"]  # the error text names the file
        else:
            assert row["width"] > 0 and row["fps"] > 0
        if row["status"] == "kept":
            assert all(v is not None for v in row["scores"].values())
        elif row["reason"] == "duration":
            # cheap filters first: a rejected video skips every later (costlier) filter
            assert row["scores"]["text_coverage"] is None and row["scores"]["static_scene"] is None
    summary = json.loads((curated / "summary.json").read_text())
    assert summary["num_inputs"] == len(lines) == summary["kept"] + summary["rejected"]
    assert sum(summary["reasons"].values()) == len(lines)
    assert len(list((curated / "shards").iterdir())) == 3


def test_manifest_and_shards_are_deterministic_and_cover_every_input(corpus, tmp_path):
    inputs = list_inputs(corpus / "videos")
    assert inputs == sorted(inputs) and len(inputs) == NUM_VIDEOS
    (corpus / "videos" / "notes.txt").write_text("a sidecar, not a video")
    try:
        assert list_inputs(corpus / "videos") == inputs
    finally:
        (corpus / "videos" / "notes.txt").unlink()
    shards = make_shards(list(reversed(inputs)), 7)
    assert [len(s) for s in shards] == [7, 7, 7, 7, 7, 5]
    assert sum(shards, []) == inputs
    assert [len(s) for s in make_shards(inputs, num_shards=3)] == [14, 13, 13]
    assert [len(s) for s in make_shards(inputs[:2], num_shards=3)] == [1, 1, 0]
    with pytest.raises(ManifestError, match="not found"):
        list_inputs(tmp_path / "missing")
    manifest = tmp_path / "manifest.json"
    assert write_manifest(str(corpus / "videos"), manifest, 16) == [0, 1, 2]
    with pytest.raises(ManifestError, match="out of range"):
        curate_manifest_shard(manifest, 3, tmp_path / "x", tiny_params())


def test_accounting_violations_raise():
    rows = [LedgerRow("a.mp4", "a.mp4", "kept"), LedgerRow("b.mp4", "b.mp4", "rejected", "duration")]
    check_accounting(["a.mp4", "b.mp4"], rows, "ok")
    with pytest.raises(LedgerError, match="missing=\\['c.mp4'\\]"):
        check_accounting(["a.mp4", "b.mp4", "c.mp4"], rows, "lost one")
    with pytest.raises(LedgerError, match="duplicated"):
        check_accounting(["a.mp4", "b.mp4"], rows + rows[:1], "twice")
    with pytest.raises(LedgerError, match="bad_status=\\['a.mp4'\\]"):
        check_accounting(["a.mp4"], [LedgerRow("a.mp4", "a.mp4", "maybe")], "status")


def test_merge_refuses_overlapping_or_truncated_shards(curated, tmp_path):
    shard_dirs = sorted((curated / "shards").iterdir())
    with pytest.raises(LedgerError, match="duplicated"):
        merge_ledgers([shard_dirs[0], shard_dirs[0]], tmp_path / "dup")
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / "summary.json").write_text((shard_dirs[1] / "summary.json").read_text())
    lines = (shard_dirs[1] / "ledger.jsonl").read_text().splitlines()
    (truncated / "ledger.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(LedgerError, match="ledger has"):
        merge_ledgers([shard_dirs[0], truncated], tmp_path / "lost")
    summary = merge_ledgers(shard_dirs, tmp_path / "merged")
    assert summary["num_inputs"] == NUM_VIDEOS and summary["shard"] is None


def test_pool_replaces_hung_and_dead_workers_and_finishes_the_rest():
    pool = DeadlinePool(slow_or_dying, workers=2, timeout_s=2.0, start_method="forkserver")
    outcomes = {o.index: o for o in pool.map_unordered(["a", "hang", "b", "die", "c", "d"])}
    assert [outcomes[i].status for i in range(6)] == [OK, TIMEOUT, OK, CRASHED, OK, OK]
    assert [outcomes[i].value for i in (0, 2, 4, 5)] == ["A", "B", "C", "D"]
    assert "exit code 3" in outcomes[3].error
    assert pool.replaced == 2


DEEP_TMPDIR_SCRIPT = """
from curation_helpers import slow_or_dying
from kangaroo.curation.pool import DeadlinePool

pool = DeadlinePool(slow_or_dying, workers=1, timeout_s=60.0, start_method="forkserver")
print(sorted(o.value for o in pool.map_unordered(["a", "b"])))
"""


def test_forkserver_workers_start_under_a_temp_dir_too_deep_for_unix_sockets(tmp_path, project_root):
    # The local pipeline puts TMPDIR inside the project: a deep checkout once failed "AF_UNIX path too long".
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    env = {
        **os.environ,
        "TMPDIR": str(deep),
        "PYTHONPATH": f"{project_root / 'tests'}{os.pathsep}{project_root}",
    }
    result = subprocess.run(
        [sys.executable, "-c", DEEP_TMPDIR_SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "['A', 'B']"


def evaluate_or_stall(task: VideoTask):
    if Path(task.key).name.startswith("stall"):
        time.sleep(3600)  # a decoder stuck in a loop on a pathological file
    return evaluate_video(task)


def test_a_stalled_video_times_out_and_the_shard_goes_on(corpus, truth, tmp_path, monkeypatch):
    good = sorted(k for k, t in truth.items() if t["kind"] == "good")[0]
    shutil.copy(corpus / "videos" / good, tmp_path / good)
    shutil.copy(corpus / "videos" / good, tmp_path / "stall.mp4")
    os.mkfifo(tmp_path / "pipe.mp4")  # not a regular file: must be rejected, not block the worker
    # fork: workers inherit the patched function, so one real video stalls inside the real runner and pool
    monkeypatch.setattr("kangaroo.curation.runner.evaluate_video", evaluate_or_stall)
    p = tiny_params("curation.video_timeout_s=15", "curation.start_method=fork")
    inputs = [str(tmp_path / name) for name in ("pipe.mp4", "stall.mp4", good)]
    summary = curate_shard(inputs, tmp_path / "out", p, progress=False)
    rows = {r.key: r for r in read_ledger(tmp_path / "out" / "ledger.jsonl")}
    assert (rows["stall.mp4"].status, rows["stall.mp4"].reason) == ("rejected", "timeout")
    assert "15 s" in rows["stall.mp4"].error
    assert rows["pipe.mp4"].reason == "decode_error" and "pipe.mp4" in rows["pipe.mp4"].error
    assert rows[good].status == "kept"
    assert summary.num_inputs == 3 and summary.workers_replaced == 1


def test_s3_prefix_input_downloads_per_video_and_cleans_up(
    corpus, truth, s3_server, s3_bucket, tmp_path, monkeypatch
):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    client = s3_server.boto_client()
    picked = {
        kind: sorted(k for k, t in truth.items() if t["kind"] == kind)[0] for kind in ("good", "truncated")
    }
    for key in picked.values():
        client.upload_file(str(corpus / "videos" / key), s3_bucket, f"raw/{key}")
    client.put_object(Bucket=s3_bucket, Key="raw/readme.txt", Body=b"sidecar")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    # fork: workers take the credentials from this process's environment as it is now
    p = tiny_params(
        f"storage.endpoint={s3_server.endpoint}", "curation.start_method=fork", "curation.workers=1"
    )
    source = f"s3://{s3_bucket}/raw"
    inputs = list_inputs(source, p.storage)
    assert inputs == sorted(f"{source}/{key}" for key in picked.values())
    curate_shard(inputs, tmp_path / "out", p, source=source, progress=False)
    rows = {r.key: r for r in read_ledger(tmp_path / "out" / "ledger.jsonl")}
    assert (
        rows[picked["good"]].status == "kept" and rows[picked["good"]].video == f"{source}/{picked['good']}"
    )
    assert rows[picked["truncated"]].reason == "decode_error"
    assert not [p for p in scratch.iterdir() if p.name.startswith("curate-")]  # downloads deleted


def test_text_filter_scores_the_area_under_text():
    frame = np.full((252, 448, 3), 40, np.uint8)
    blank = TextCoverageFilter(1, 448, 0.05, 0.3)
    assert blank.score(frame[None], None) == 0.0
    cv2.putText(frame, "SUBSCRIBE NOW", (10, 120), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (255, 255, 255), 4)
    score = blank.score(frame[None], None)
    assert 0.05 < score < 0.3 and not blank.passes(score)


def test_union_area_counts_overlaps_once():
    square = np.array([[0, 0], [50, 0], [50, 50], [0, 50]], np.float32)
    assert union_area_fraction((100, 100), [square]) == pytest.approx(0.25, abs=0.02)
    assert union_area_fraction((100, 100), [square, square + 25]) == pytest.approx(0.4375, abs=0.03)


@pytest.mark.parametrize(("name", "face_fires"), [("Megamind.avi", True), ("vtest.avi", False)])
def test_face_filter_on_real_videos(name, face_fires):
    path = debian_sample(name)
    p = tiny_params()
    row = evaluate_video(VideoTask(str(path), name, 0, p))
    assert (row.reason == "face_coverage") == face_fires, row
    score = row.scores["face_coverage"]
    assert (score > p.curation.face.max_coverage) == face_fires
