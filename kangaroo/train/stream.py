"""A stage's training rows, streamed from packed data through a torch DataLoader.

    index   samples.jsonl -> the stage's samples (its sources and question categories; qa x qa_repeats)
            and each one's sequence length from metadata alone (frames dynamic sampling would take x tokens
            per frame + text); longer than the context -> dropped and counted; only small numeric columns
            stay in memory
    plan    PackedRowSampler: per epoch a seeded shard order, first-fit-decreasing packing within windows
            of `train.data.window_shards` shards, rows dealt round-robin to the ranks
    read    DataLoader workers: worker w of W builds the rank's rows w, w+W, w+2W, ... from its position
            (shards fetched and verified on first use, media decoded with the video module, the processor,
            `collate_packed_row`); the DataLoader hands rows back in order, so the rank sees one sequence
            whatever W is, and the position (epoch, cursor) in the checkpoint resumes it exactly

A sample whose medium does not decode is skipped and counted (`undecodable`, or `resource_limit` for pixel and
decompression bombs); shard, network and credential
failures end the stage with a PackedDataError naming the shard or URI.
"""

from __future__ import annotations

import itertools
import logging
import os
import tempfile
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from kangaroo.packed.errors import PackedDataError
from kangaroo.packed.format import tokenizer_fingerprint, visual_run_length
from kangaroo.packed.reader import PackedData, iter_samples
from kangaroo.train.data import planned_frames, process_sample, read_frames, sample_text
from kangaroo.train.errors import TrainInputError
from kangaroo.train.packing import PackedBatch, collate_packed_row
from kangaroo.train.sampler import PackedRowSampler
from kangaroo.train.settings import QUESTION_SOURCES, StageSettings
from kangaroo.video import VideoError, VideoSettings

log = logging.getLogger(__name__)
SOURCE_CODES = ("images", "image_qa", "captions", "qa")


@dataclass
class StageIndex:
    """The stage's samples as numeric columns (one entry per sample, qa repeats included)."""

    record: np.ndarray  # int64
    source: np.ndarray  # int8, index into SOURCE_CODES
    position: np.ndarray  # int32, the row's place in record.rows[source]
    shard: np.ndarray  # int32, index into shard_names
    length: np.ndarray  # int32, planned sequence length (an upper bound for videos)
    is_image: np.ndarray  # bool
    shard_names: list[str]
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.record.shape[0])


def stage_index(data: PackedData, stage: StageSettings, processor) -> StageIndex:
    """Read samples.jsonl once, keeping the columns this stage needs."""
    data.check_tokenizer(tokenizer_fingerprint(processor.tokenizer))
    shard_names = [s["file"] for s in data.manifest["shards"]]
    shard_ids = {name: i for i, name in enumerate(shard_names)}
    wanted = set(stage.sources)
    categories = set(stage.question_categories)
    columns: dict[str, list] = {
        k: [] for k in ("record", "source", "position", "shard", "length", "is_image")
    }
    too_long = 0
    for row in iter_samples(data.samples_file()):
        if row["source"] not in wanted:
            continue
        if categories and row["source"] in QUESTION_SOURCES and row.get("category") not in categories:
            continue
        if row.get("split") != "train":
            raise PackedDataError(
                f"{data.uri}: sample {row['key']} of split {row.get('split')!r} in packed data"
            )
        is_image = row["kind"] == "image"
        frames = planned_frames(is_image, row["start"], row["duration"], row["num_frames"], stage)
        length = row["text_tokens"] - 1 + visual_run_length(processor, frames, stage.resolution)
        if length > stage.context_length:
            too_long += 1
            continue
        repeats = stage.qa_repeats if row["source"] == "qa" else 1
        for _ in range(repeats):
            columns["record"].append(row["record"])
            columns["source"].append(SOURCE_CODES.index(row["source"]))
            columns["position"].append(row["position"])
            columns["shard"].append(shard_ids[row["shard"]])
            columns["length"].append(length)
            columns["is_image"].append(is_image)
    if not columns["record"]:
        categories_note = f" and question categories {stage.question_categories}" if categories else ""
        raise TrainInputError(
            f"{data.uri}: no samples of sources {stage.sources}{categories_note} fit the stage"
        )
    dtypes = {
        "record": np.int64,
        "source": np.int8,
        "position": np.int32,
        "shard": np.int32,
        "length": np.int32,
        "is_image": bool,
    }
    arrays = {k: np.asarray(v, dtype=dtypes[k]) for k, v in columns.items()}
    return StageIndex(**arrays, shard_names=shard_names, skipped={"too_long": too_long} if too_long else {})


@dataclass
class RowFailure:
    """A worker's infrastructure failure, handed to the main process to raise as one clean line."""

    message: str


@dataclass
class StreamedRow:
    batch: PackedBatch
    row: list[int]
    skipped: dict[str, int]


class PackedRowStream(IterableDataset):
    """The rank's packed rows from `start` (epoch, cursor) on, forever; see the module docstring."""

    def __init__(
        self,
        data: PackedData,
        index: StageIndex,
        sampler: PackedRowSampler,
        stage: StageSettings,
        video: VideoSettings,
        processor,
        frames_cache_mb: int = 256,
    ) -> None:
        self.data = data
        self.index = index
        self.sampler = sampler
        self.stage = stage
        self.video = video
        self.processor = processor
        self.frames_cache_bytes = frames_cache_mb * 1024 * 1024
        self.start = (sampler.epoch, sampler.cursor)

    def rows(self):
        """The rank's rows in training order from the start position (every process computes the same)."""
        epoch, cursor = self.start
        while True:
            rows = self.sampler.rank_rows(epoch)
            yield from rows[cursor:]
            epoch, cursor = epoch + 1, 0

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        if info is not None:
            torch.set_num_threads(1)  # decoding workers must not fight the training threads for cores
        frames_cache = RecentFrames(self.frames_cache_bytes)  # each worker process has its own
        scratch = Path(tempfile.mkdtemp(prefix=f"kangaroo-decode-{os.getpid()}-"))
        try:
            for row in itertools.islice(self.rows(), worker, None, workers):
                try:
                    yield self.build(row, frames_cache, scratch)
                except PackedDataError as err:
                    yield RowFailure(str(err))
                    return
        finally:
            for leftover in scratch.glob("*"):
                leftover.unlink(missing_ok=True)
            scratch.rmdir()

    def build(self, row: list[int], frames_cache: RecentFrames, scratch: Path) -> StreamedRow:
        samples, skipped = [], Counter()
        index, stage = self.index, self.stage
        used = 0
        for sample in row:
            record = int(index.record[sample])
            frames, media_meta = self._frames(
                record, int(index.shard[sample]), bool(index.is_image[sample]), frames_cache, scratch
            )
            if isinstance(frames, str):  # why the medium gave no frames
                skipped[frames] += 1
                continue
            source = SOURCE_CODES[int(index.source[sample])]
            row_data = media_meta["rows"][source][int(index.position[sample])]
            user, reply = sample_text(source, row_data)
            processed = process_sample(
                self.processor,
                frames,
                source,
                f"{media_meta['key']}:{source}:{index.position[sample]}",
                user,
                reply,
                stage.resolution,
            )
            if len(processed) > index.length[sample] or used + len(processed) > stage.context_length:
                skipped["length_mismatch"] += 1  # metadata promised fewer tokens: never cut a sample
                continue
            used += len(processed)
            samples.append(processed)
        if not samples:
            raise PackedDataError(
                f"{self.data.uri}: every sample of a packed row failed to decode ({dict(skipped)})"
            )
        batch = collate_packed_row(samples, stage.context_length, self.processor.tokenizer.pad_token_id)
        return StreamedRow(batch, list(row), dict(skipped))

    def _frames(self, record: int, shard: int, is_image: bool, cache: RecentFrames, scratch: Path):
        """(decoded frames or the reason there are none, record meta), from a per-worker cache of recent media
        (bounded in bytes): a still's several questions often sit in nearby rows of the same window."""
        if (hit := cache.get(record)) is not None:
            return hit
        media, meta = self.data.record(record, self.index.shard_names[shard])
        path = scratch / f"{record}{Path(meta['name']).suffix}"
        path.write_bytes(media)
        try:
            frames = read_frames(path, is_image, self.stage, self.video)
        except VideoError as err:  # hostile or broken media: skipped and counted, never fatal
            log.warning("skipping %s in %s: %s", meta["key"], self.index.shard_names[shard], err)
            frames = "resource_limit" if err.cause == "resource_limit" else "undecodable"
        finally:
            path.unlink(missing_ok=True)
        cache.put(record, (frames, meta))
        return frames, meta


class RecentFrames:
    """The most recently used media's (frames or skip reason, meta), bounded by the frames' bytes, not by
    their number; the newest entry always stays."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.held_bytes = 0
        self._entries: OrderedDict[int, tuple[Any, dict]] = OrderedDict()

    def get(self, record: int) -> tuple[Any, dict] | None:
        if record not in self._entries:
            return None
        self._entries.move_to_end(record)
        return self._entries[record]

    def put(self, record: int, entry: tuple[Any, dict]) -> None:
        self._entries[record] = entry
        self.held_bytes += _nbytes(entry[0])
        while len(self._entries) > 1 and self.held_bytes > self.max_bytes:
            evicted, _ = self._entries.popitem(last=False)[1]
            self.held_bytes -= _nbytes(evicted)


def _nbytes(frames) -> int:
    return 0 if isinstance(frames, str) else frames.frames.nbytes


def _identity(item):
    return item


def row_loader(stream: PackedRowStream, workers: int, prefetch_rows: int) -> DataLoader:
    """A DataLoader over the stream: batch_size None (a packed row is the micro-batch)."""
    options: dict[str, Any] = {"num_workers": workers, "batch_size": None, "collate_fn": _identity}
    if workers > 0:
        options.update(
            prefetch_factor=prefetch_rows, persistent_workers=False, multiprocessing_context="fork"
        )
    return DataLoader(stream, **options)


def next_row(iterator, sampler: PackedRowSampler) -> StreamedRow:
    """The next row from the loader; checks it is the row the sampler says comes next."""
    item = next(iterator)
    if isinstance(item, RowFailure):
        raise PackedDataError(item.message)
    expected = sampler.next_row()
    if item.row != list(expected):
        raise RuntimeError(
            f"data loader order broke: got row {item.row[:4]}..., expected {list(expected)[:4]}..."
        )
    return item
