"""Curation throughput on the sample corpus (videos/minute, one worker per core), and the speed-up of the
sparse frame plan (one decode at reduced size, a few frames per filter) over running every filter on every
frame at full resolution, with the agreement of the two decisions."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

from kangaroo.config import load_params
from kangaroo.curation.evaluate import VideoTask, evaluate_video
from kangaroo.curation.filters import warm_up
from kangaroo.curation.manifest import list_inputs
from kangaroo.curation.runner import curate_shard, summary_table
from kangaroo.synth.corpus import write_corpus
from kangaroo.synth.settings import SynthSettings

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
NUM_VIDEOS = 40
REFERENCE_KINDS = {"good": 3, "text": 1, "face": 1, "static": 1}  # clips compared frame-by-frame


def reference_subset(corpus: Path) -> list[dict]:
    """The shortest standard-definition clips of each kind that reach the frame filters."""
    rows = [json.loads(line) for line in (corpus / "ground_truth.jsonl").read_text().splitlines()]
    chosen = []
    for kind, count in REFERENCE_KINDS.items():
        candidates = [r for r in rows if r["kind"] == kind and r["width"] and r["width"] <= 426]
        chosen += sorted(candidates, key=lambda r: r["duration"])[:count]
    return chosen


def main() -> None:
    params = load_params(ROOT / "params.yaml", "tiny")
    with tempfile.TemporaryDirectory(prefix="bench-curation-") as tmp:
        corpus = Path(tmp) / "corpus"
        write_corpus(
            corpus, SynthSettings(seed=11, num_videos=NUM_VIDEOS, num_images=4, long_video_seconds=30.0)
        )
        inputs = list_inputs(corpus / "videos")

        started = time.perf_counter()
        summary = curate_shard(inputs, Path(tmp) / "out", params, progress=False)
        wall = time.perf_counter() - started
        log.info(
            "sample corpus: %d videos in %.1f s wall = %.1f videos/min (workers=%s)",
            len(inputs),
            wall,
            60 * len(inputs) / wall,
            params.curation.workers or "cores",
        )
        from rich.console import Console

        Console(stderr=True).print(summary_table(summary))

        subset = reference_subset(corpus)
        # Detectors and decoder libraries loaded before timing, as in a warmed-up worker.
        warm_up(params.curation)
        evaluate_video(VideoTask(str(corpus / subset[-1]["video"]), "warm-up", 0, params))
        sparse_s = full_s = 0.0
        agree = 0
        for row in subset:
            task = VideoTask(str(corpus / row["video"]), row["video"], 0, params)
            t0 = time.perf_counter()
            sparse = evaluate_video(task)
            t1 = time.perf_counter()
            full = evaluate_video(VideoTask(task.video, task.key, 0, params, every_frame=True))
            t2 = time.perf_counter()
            sparse_s += t1 - t0
            full_s += t2 - t1
            same = (sparse.status, sparse.reason) == (full.status, full.reason)
            agree += same
            log.info(
                "%-22s %-7s sparse %-14s %.2f s | every frame %-14s %.2f s%s",
                row["video"],
                row["kind"],
                sparse.reason or sparse.status,
                t1 - t0,
                full.reason or full.status,
                t2 - t1,
                "" if same else "  <- differs",
            )
        log.info(
            "sparse plan vs every frame at full resolution on %d clips: %.1fx faster, decisions agree on "
            "%d/%d (%.0f%%)",
            len(subset),
            full_s / sparse_s,
            agree,
            len(subset),
            100 * agree / len(subset),
        )
