"""Training data: the streaming reader (packed shards -> DataLoader workers) at N and 8N samples.

Side by side in one run, on the tiny instruction-tuning stage (stills, still questions, clip questions and
captions; up to 8 frames per clip), 10 optimizer steps each:

(a) peak RSS of a training stage (the `kangaroo train` process plus its DataLoader workers, polled) on packed
    data of N and of 8N samples; goal: < 15% growth (the old loader decoded every sample before step 1);
(b) samples/s the reader delivers alone with 0 and with 2 workers, beside the samples/s the tiny model
    consumes in (a); goal: with 2 workers the reader is never the bottleneck;
(c) seconds to the first optimizer step at 8N, streaming vs decode-everything-first (today's old path: every
    sample decoded and processed in the training process before step 1, measured here as the time to build
    every row of the epoch in one process, plus the same model and engine set-up); goal: >= 5x sooner.

The N corpus is generated once into .cache/bench/data_corpus_n; the 8N corpus is that corpus replicated 8
times under new names (new media files, keys and question ids: 8x the records and samples, each decoded on
its own; only the synthesiser's time is saved). The machine is shared: read the ratios.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

import psutil

from kangaroo.config import load_params
from kangaroo.synth.corpus import write_corpus
from kangaroo.synth.settings import SynthSettings
from kangaroo.train.reference_dataset import write_reference_dataset

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench"
STAGE = "instruction_tuning"
STEPS = 10
CLIPS, STILLS, COPIES = 16, 48, 8
READER_ROWS = 24


def replicate(corpus: Path, out: Path, copies: int) -> Path:
    """`copies` renamed copies of every medium and row of `corpus` (ground truth included) in one corpus."""
    import shutil

    out.mkdir(parents=True, exist_ok=True)
    id_fields = ("question_id", "clip_id")
    path_fields = ("image", "video")
    for name in ("images.jsonl", "image_questions.jsonl", "questions.jsonl", "ground_truth.jsonl"):
        rows = [json.loads(line) for line in (corpus / name).read_text().splitlines() if line.strip()]
        copied = []
        for copy in range(copies):
            for row in rows:
                row = dict(row)
                for field in id_fields:
                    if field in row:
                        row[field] = f"c{copy}_{row[field]}"
                for field in path_fields:
                    if field in row:
                        source = Path(row[field])
                        row[field] = str(source.with_name(f"c{copy}_{source.name}"))
                        target = out / row[field]
                        if not target.exists():
                            target.parent.mkdir(parents=True, exist_ok=True)
                            shutil.copyfile(corpus / source, target)
                copied.append(row)
        (out / name).write_text("".join(json.dumps(r) + "\n" for r in copied))
    return out


def ensure_packed(label: str, work: Path) -> Path:
    corpus = CACHE / "data_corpus_n"
    if not (corpus / "questions.jsonl").is_file():
        write_corpus(
            corpus, SynthSettings(seed=21, num_videos=CLIPS, num_images=STILLS, long_video_seconds=30.0)
        )
    if label == "8N":
        corpus = replicate(corpus, work / "corpus_8n", COPIES)
    from kangaroo.packed.pack import pack_training_data

    write_reference_dataset(corpus, work / f"dataset_{label}")
    packed = work / f"packed_{label}"
    params = load_params(ROOT / "params.yaml", "tiny")
    pack_training_data(params, corpus, packed, work / f"dataset_{label}", show_progress=False)
    return packed


def run_stage(packed: Path, out: Path) -> dict:
    """`kangaroo train` in a subprocess; returns its summary plus the peak RSS of its process tree."""
    command = [
        str(Path(sys.executable).with_name("kangaroo")),
        "train",
        "--profile",
        "tiny",
        "--stage",
        STAGE,
    ]
    command += ["--data", str(packed), "--init", "none", "--max-steps", str(STEPS), "--out", str(out)]
    out.mkdir(parents=True, exist_ok=True)
    log_file = out.with_name(out.name + ".log")
    with log_file.open("wb") as sink:
        process = subprocess.Popen(command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
    root, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.1)
    if process.returncode != 0:
        tail = log_file.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(command)} failed with {process.returncode}:\n{tail}")
    summary = json.loads((out / "summary.json").read_text())
    summary["peak_rss_mb"] = peak / 2**20
    summary["samples_per_s"] = summary["samples_trained"] / summary["wall_time_s"]
    return summary


def reader_rate(packed: Path, workers: int) -> tuple[float, float]:
    """(samples/s delivered by the reader alone, seconds to build every row of epoch 0 in one process)."""
    from kangaroo.model.build import build_processor_only
    from kangaroo.packed.reader import PackedData
    from kangaroo.train.sampler import PackedRowSampler
    from kangaroo.train.stream import PackedRowStream, row_loader, stage_index

    params = load_params(ROOT / "params.yaml", "tiny")
    stage = params.train.stage(STAGE)
    processor = build_processor_only(params.model)
    data = PackedData.open(packed, params.storage)
    index = stage_index(data, stage, processor)
    sampler = PackedRowSampler(index.length, stage.context_length, 0, groups=index.shard, window=16)
    stream = PackedRowStream(data, index, sampler, stage, params.video, processor)
    rows = iter(row_loader(stream, workers, params.train.data.prefetch_rows))
    started, samples = time.perf_counter(), 0
    for _ in range(READER_ROWS):
        samples += next(rows).batch.num_samples
    rate = samples / (time.perf_counter() - started)
    del rows
    if workers:
        return rate, float("nan")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        for row in sampler.rank_rows(0):  # what the old loader did before step 1: every sample, decoded
            stream.build(row, OrderedDict(), Path(scratch))
    return rate, time.perf_counter() - started


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        work = Path(tmp)
        packed = {label: ensure_packed(label, work) for label in ("N", "8N")}
        runs = {label: run_stage(packed[label], work / f"run_{label}") for label in ("N", "8N")}
        rate0, decode_all_s = reader_rate(packed["8N"], 0)
        rate2, _ = reader_rate(packed["8N"], 2)
    small, large = runs["N"], runs["8N"]
    log.info(
        "(a) peak RSS of a stage: %.0f MB on %d samples, %.0f MB on %d samples: growth %+.1f%% (goal < 15%%)",
        small["peak_rss_mb"],
        small["num_samples"],
        large["peak_rss_mb"],
        large["num_samples"],
        100 * (large["peak_rss_mb"] / small["peak_rss_mb"] - 1),
    )
    consumed = large["samples_per_s"]
    log.info(
        "(b) reader alone: %.0f samples/s with 0 workers, %.0f with 2; the model consumes %.0f samples/s: "
        "2-worker reader / model x%.1f (goal > 1)",
        rate0,
        rate2,
        consumed,
        rate2 / consumed,
    )
    streaming = large["time_to_first_step_s"]
    log.info(
        "(c) first step at 8N: streaming %.1f s, decode-everything-first %.1f s (+%.1f s decoding all %d "
        "samples): x%.1f sooner (goal >= 5x)",
        streaming,
        streaming + decode_all_s,
        decode_all_s,
        large["num_samples"],
        (streaming + decode_all_s) / streaming,
    )


if __name__ == "__main__":
    from kangaroo.logs import setup_logging

    setup_logging("INFO")
    main()
