"""`kangaroo pack`: corpus + captioned dataset -> sharded, indexed training data (kangaroo.packed.format).

One record per medium (a still or a clip) holds the file's bytes as they are and every train-split row of
every source about it, so a still's questions travel with its pixels once. Held out: rows of the eval split,
stills of the eval split, and every clip behind an eval-split question (captions of those would leak the
answers). Media are probed, never decoded: image headers (size) and video indexes (timestamps), enough for a
stage to compute each sample's sequence length from the index. A medium that cannot be probed is rejected
with its reason in the manifest. The same inputs and settings give the same shards byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections import Counter, defaultdict
from pathlib import Path, PurePosixPath
from typing import Any

from tqdm.auto import tqdm

from kangaroo.config import Params
from kangaroo.packed.errors import PackedDataError
from kangaroo.packed.format import (
    FORMAT,
    LITDATA_INDEX,
    MANIFEST,
    SAMPLES,
    count_text_tokens,
    record_meta,
    tokenizer_fingerprint,
)
from kangaroo.packed.location import Location, is_s3
from kangaroo.train.data import SOURCES, sample_key, sample_text
from kangaroo.video import VideoError

log = logging.getLogger(__name__)
MIB = 1024 * 1024
TOKEN_COUNT_BATCH = 4096


def training_rows(corpus: Location, dataset: Location | None) -> dict[str, dict[str, list]]:
    """{media URI: {source: [row, ...]}} of every train-split row; eval material is left out."""
    questions = corpus.read_jsonl("questions.jsonl", required=False)
    held_out = {PurePosixPath(q["video"]).name for q in questions if q.get("split") == "eval"}
    by_media: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for source, spec in SOURCES.items():
        folder = corpus if spec.folder == "corpus" else dataset
        if folder is None:
            continue
        rows = questions if spec.file == "questions.jsonl" else folder.read_jsonl(spec.file, required=False)
        for row in rows:
            media = str(row[spec.media_field])
            default_split = "train" if source in ("images", "captions") else None
            if row.get("split", default_split) != "train":
                continue  # the eval split is held out for kangaroo.eval
            names = {PurePosixPath(media).name, PurePosixPath(str(row.get("key") or "")).name}
            if not spec.is_image and names & held_out:
                continue  # a clip the evaluation asks about
            by_media[folder.join(media)][source].append(row)
    return by_media


def probe(path: Path, is_image: bool, video_settings) -> dict[str, Any]:
    """Medium metadata without decoding pixels: image header, or the video's frame index."""
    if is_image:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as image:
                width, height = image.size
        except Image.DecompressionBombError as err:
            raise VideoError(path, "resource_limit", str(err)) from err
        except (UnidentifiedImageError, OSError, ValueError) as err:
            raise VideoError(path, "corrupt", f"not a readable image: {err}") from err
        if width * height > video_settings.max_image_pixels:  # a pixel bomb never enters a shard
            raise VideoError(
                path,
                "resource_limit",
                f"{width}x{height} px > video.max_image_pixels {video_settings.max_image_pixels}",
            )
        return {
            "kind": "image",
            "width": width,
            "height": height,
            "duration": 0.0,
            "start": 0.0,
            "fps": 0.0,
            "num_frames": 1,
        }
    from kangaroo.video import open_video

    with open_video(path, video_settings) as reader:
        return {
            "kind": "video",
            "width": reader.width,
            "height": reader.height,
            "duration": reader.duration,
            "start": float(reader.timestamps[0]),
            "fps": reader.fps,
            "num_frames": reader.num_frames,
        }


def record_order(media: str, seed: int) -> str:
    """Seeded hash order: shards mix sources and clips, and the order does not depend on input order. Hash
    the medium's name inside the corpus, not where the corpus sits: the same corpus in another folder or
    bucket must give the same records, hence the same samples in every training batch."""
    return hashlib.sha256(f"{seed}:{media}".encode()).hexdigest()


def pack_training_data(
    params: Params,
    corpus: str | Path,
    out: str | Path,
    dataset: str | Path | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Pack CORPUS (+ DATASET) into OUT (folder or s3:// prefix); returns the manifest."""
    from litdata.streaming.writer import BinaryWriter

    from kangaroo.model.build import build_tokenizer

    settings = params.train.data
    corpus_loc = Location(corpus, params.storage)
    dataset_loc = Location(dataset, params.storage) if dataset else None
    out_loc = Location(out, params.storage)
    tokenizer = build_tokenizer(params.model)  # text token counts need nothing else of the model
    by_media = training_rows(corpus_loc, dataset_loc)
    if not by_media:
        raise PackedDataError(f"{corpus_loc.uri}: no train-split rows to pack")
    media_order = sorted(by_media, key=lambda m: record_order(corpus_loc.relative(m), settings.pack_seed))

    staging_parent = Path(out) if not is_s3(out) else None
    with tempfile.TemporaryDirectory(prefix="kangaroo-pack-") as tmp:
        tmp = Path(tmp)
        staging = staging_parent if staging_parent is not None else tmp / "out"
        staging.mkdir(parents=True, exist_ok=True)
        for stale in [
            *staging.glob("chunk-*.bin"),
            *(staging / n for n in (LITDATA_INDEX, SAMPLES, MANIFEST)),
        ]:
            stale.unlink(missing_ok=True)
        writer = BinaryWriter(str(staging), chunk_bytes=settings.shard_mb * MIB)
        samples_tmp = tmp / "samples.partial.jsonl"
        rejected: list[dict[str, str]] = []
        per_source: Counter[str] = Counter()
        record = 0
        with samples_tmp.open("w") as samples_out:
            counting = TokenCounting(tokenizer, samples_out)
            for media in tqdm(media_order, desc="pack", disable=not show_progress, leave=False):
                rows = {source: rows for source, rows in by_media[media].items()}
                is_image = SOURCES[next(iter(rows))].is_image
                local = tmp / ("medium" + PurePosixPath(media).suffix)
                try:
                    corpus_loc.fetch(media, local)
                    meta = probe(local, is_image, params.video)
                except (VideoError, PackedDataError) as err:
                    log.warning("rejecting %s: %s", media, err)
                    rejected.append({"media": media, "reason": str(err)})
                    continue
                key = _media_key(media, corpus_loc, dataset_loc)
                writer.add_item(
                    record,
                    {"media": local.read_bytes(), "meta": record_meta(key, meta["kind"], local.name, rows)},
                )
                for source in sorted(rows):
                    for position, row in enumerate(rows[source]):
                        entry = {
                            "record": record,
                            "source": source,
                            "position": position,
                            "key": sample_key(source, row),
                            "split": "train",
                            **meta,
                        }
                        if "category" in row:
                            entry["category"] = row["category"]
                        counting.add(entry, sample_text(source, row))
                        per_source[source] += 1
                record += 1
            counting.flush()
        if record == 0:
            raise PackedDataError(f"{corpus_loc.uri}: every medium was rejected ({len(rejected)})")
        writer.done()
        writer.merge()
        shards = _finish_litdata_index(staging)
        shard_of = _shard_lookup(shards)
        with samples_tmp.open() as partial, (staging / SAMPLES).open("w") as samples_out:
            for line in partial:
                entry = json.loads(line)
                entry["shard"] = shard_of(entry["record"])
                samples_out.write(json.dumps(entry, sort_keys=True) + "\n")
        manifest = {
            "format": FORMAT,
            "tokenizer": tokenizer_fingerprint(tokenizer),
            "num_records": record,
            "num_samples": sum(per_source.values()),
            "samples_by_source": dict(sorted(per_source.items())),
            "shards": shards,
            "rejected": rejected,
            "corpus": corpus_loc.uri,
            "dataset": dataset_loc.uri if dataset_loc else None,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if out_loc.remote:
            out_loc.publish(staging)
    log.info(
        "packed %d samples (%s) of %d media into %d shards at %s; %d media rejected",
        manifest["num_samples"],
        ", ".join(f"{k} {v}" for k, v in manifest["samples_by_source"].items()),
        record,
        len(shards),
        out_loc.uri,
        len(rejected),
    )
    return manifest


class TokenCounting:
    """Sample entries waiting for their text token counts, counted and written in batches of
    `TOKEN_COUNT_BATCH` (one tokenizer call each; memory stays bounded whatever the corpus size)."""

    def __init__(self, tokenizer, out) -> None:
        self.tokenizer, self.out = tokenizer, out
        self.entries: list[dict[str, Any]] = []
        self.turns: list[tuple[str, str]] = []

    def add(self, entry: dict[str, Any], turn: tuple[str, str]) -> None:
        self.entries.append(entry)
        self.turns.append(turn)
        if len(self.entries) >= TOKEN_COUNT_BATCH:
            self.flush()

    def flush(self) -> None:
        for entry, tokens in zip(self.entries, count_text_tokens(self.tokenizer, self.turns), strict=True):
            entry["text_tokens"] = tokens
            self.out.write(json.dumps(entry, sort_keys=True) + "\n")
        self.entries, self.turns = [], []


def _media_key(media: str, corpus: Location, dataset: Location | None) -> str:
    """The medium's name relative to its input folder (stable across machines)."""
    for folder in (corpus, dataset):
        if folder is not None and media.startswith(folder.uri + "/"):
            return media[len(folder.uri) + 1 :]
    return PurePosixPath(media).name


def _finish_litdata_index(staging: Path) -> list[dict[str, Any]]:
    """Shard list with sizes and SHA-256; litdata's `updated_at` (a wall-clock time) becomes a content hash,
    so re-packing the same inputs gives the same files and litdata's cache key follows the content."""
    index_file = staging / LITDATA_INDEX
    index = json.loads(index_file.read_text())
    shards = []
    first = 0
    for chunk in index["chunks"]:
        path = staging / chunk["filename"]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        shards.append(
            {
                "file": chunk["filename"],
                "first_record": first,
                "records": int(chunk["chunk_size"]),
                "bytes": path.stat().st_size,
                "sha256": digest,
            }
        )
        first += int(chunk["chunk_size"])
    index["updated_at"] = hashlib.sha256("".join(s["sha256"] for s in shards).encode()).hexdigest()[:16]
    index_file.write_text(json.dumps(index, sort_keys=True))
    return shards


def _shard_lookup(shards: list[dict[str, Any]]):
    import bisect

    starts = [s["first_record"] for s in shards]

    def shard_of(record: int) -> str:
        return shards[bisect.bisect_right(starts, record) - 1]["file"]

    return shard_of
