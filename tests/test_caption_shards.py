"""Captioning per shard: `kangaroo caption --shard I` captions only its shard, a killed task rerun captions
only the rest, and the merge accounts for every kept video (captioned or a caption failure)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_config_policy import allow, params_file
from typer.testing import CliRunner

from kangaroo.cli import app
from kangaroo.curation.captioning import CaptionError, merge_captions
from kangaroo.curation.ledger import LedgerRow, write_ledger
from kangaroo.video.synthetic import write_index_clip

ROOT = Path(__file__).resolve().parents[1]
NUM_VIDEOS = 10
KANGAROO = str(Path(sys.executable).parent / "kangaroo")  # the console script of this venv


@pytest.fixture(scope="module")
def curated(tmp_path_factory) -> Path:
    """Ten kept clips in two shards (one of them without a source caption) and a rejected one."""
    videos = tmp_path_factory.mktemp("raw") / "videos"
    rows = []
    for i in range(NUM_VIDEOS):
        name = f"clip_{i:02d}.mp4"
        write_index_clip(videos / name, 30, fps=15.0)
        if i != 7:
            (videos / name).with_suffix(".txt").write_text(f"A red circle number {i} moves left.\n")
        rows.append(LedgerRow(str(videos / name), name, "kept", duration=2.0, fps=15.0, width=160, height=96,
                              shard=i // 5))  # fmt: skip
    rows.append(LedgerRow(str(videos / "bad.mp4"), "bad.mp4", "rejected", "decode_error", shard=1))
    out = tmp_path_factory.mktemp("curated")
    write_ledger(out / "ledger.jsonl", rows)
    return out


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def caption_cli(*args: str) -> None:
    params = ["--params", str(ROOT / "params.yaml"), "--profile", "tiny"]
    result = CliRunner().invoke(app, ["caption", *args, *params])
    assert result.exit_code == 0, result.output[-3000:]


def test_each_shard_captions_only_its_videos_and_the_merge_accounts_for_all(curated, tmp_path):
    for shard in (0, 1):
        caption_cli("--curated", str(curated), "--out", str(tmp_path / f"s{shard}"), "--shard", str(shard))
    shard0 = {row["key"] for row in read_jsonl(tmp_path / "s0" / "dataset.jsonl")}
    assert shard0 == {f"clip_{i:02d}.mp4" for i in range(5)}
    failures = read_jsonl(tmp_path / "s1" / "caption_failures.jsonl")
    assert [f["key"] for f in failures] == ["clip_07.mp4"] and "no source caption" in failures[0]["error"]

    summary = merge_captions([tmp_path / "s0", tmp_path / "s1"], curated, tmp_path / "merged")
    assert (summary.num_kept, summary.captioned, summary.failed) == (NUM_VIDEOS, NUM_VIDEOS - 1, 1)
    merged = read_jsonl(tmp_path / "merged" / "dataset.jsonl")
    assert sorted(row["key"] for row in merged) == sorted(f"clip_{i:02d}.mp4" for i in range(10) if i != 7)
    assert read_jsonl(tmp_path / "merged" / "caption_failures.jsonl") == failures
    assert (tmp_path / "merged" / "ledger.jsonl").read_text() == (curated / "ledger.jsonl").read_text()


def test_merge_refuses_a_missing_shard_or_a_video_captioned_twice(curated, tmp_path):
    caption_cli("--curated", str(curated), "--out", str(tmp_path / "s0"), "--shard", "0")
    with pytest.raises(CaptionError, match=r"missing=\['clip_05.mp4'"):
        merge_captions([tmp_path / "s0"], curated, tmp_path / "merged")
    with pytest.raises(CaptionError, match="clip_00.mp4.*already came from another shard"):
        merge_captions([tmp_path / "s0", tmp_path / "s0"], curated, tmp_path / "merged")


def test_unknown_shard_is_a_one_line_error(curated, tmp_path, project_root):
    result = subprocess.run(
        [KANGAROO, "caption", "--curated", str(curated), "--out", str(tmp_path),
         "--shard", "9", "--params", str(project_root / "params.yaml")],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(project_root)},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    message = " ".join((result.stdout + result.stderr).split())  # rich wraps the log line
    assert "CaptionError: --shard 9" in message and "has shards [0, 1]" in message


class SlowCompletions(BaseHTTPRequestHandler):
    """An OpenAI-style endpoint that takes 0.15 s a request and counts them."""

    count = 0
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers["Content-Length"]))
        with type(self).lock:
            type(self).count += 1
        time.sleep(0.15)
        body = json.dumps(
            {"choices": [{"index": 0, "message": {"role": "assistant", "content": "A shape."}}]}
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args) -> None:
        pass


def test_killed_caption_task_reruns_only_the_videos_it_had_not_written(curated, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowCompletions)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out = tmp_path / "shard0"
    listener = f"http://127.0.0.1:{server.server_address[1]}/v1"
    # the operator's deployed params allow this captioner (a run cannot widen security.caption_endpoints)
    deployed = params_file(tmp_path, lambda tree: allow(tree, "tiny", caption_endpoints=[listener]))
    command = [
        KANGAROO, "caption", "--curated", str(curated), "--out", str(out),
        "--shard", "0", "--backend", "openai", "--params", str(deployed), "--profile", "tiny",
        "--set", f"caption.openai.base_url={listener}",
        "--set", "caption.openai.max_concurrency=1",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        task = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        dataset = out / "dataset.jsonl"
        deadline = time.monotonic() + 300
        while not (dataset.is_file() and len(read_jsonl(dataset)) >= 2):  # a video is 6 requests, ~1 s
            assert task.poll() is None, task.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "caption task wrote nothing"
            time.sleep(0.05)
        task.send_signal(signal.SIGKILL)  # no chance to clean up, as when a node is lost
        task.wait()
        done_before = {row["key"] for row in read_jsonl(dataset)}
        assert 2 <= len(done_before) < 5
        SlowCompletions.count = 0

        rerun = subprocess.run(command, env=env, capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
    finally:
        server.shutdown()
        server.server_close()
    rows = read_jsonl(dataset)
    assert sorted(row["key"] for row in rows) == [f"clip_{i:02d}.mp4" for i in range(5)]  # each once
    # 5 frame requests and 1 merge request per video: only the videos the killed task had not written
    assert SlowCompletions.count == 6 * (5 - len(done_before))
    summary = json.loads((out / "caption_summary.json").read_text())
    assert (summary["captioned"], summary["failed"], summary["resumed"]) == (5, 0, len(done_before))
