"""The packed-data layout, one place for its names (docs/data-formats.md "Packed training data").

OUT/index.json       litdata's chunk index (chunk files, item counts, serialisation config)
OUT/chunk-0-N.bin    litdata chunks ("shards"), each <= train.data.shard_mb unless one medium is larger;
                     an item (record) = {"media": the file's bytes, "meta": JSON {"key", "kind",
                     "name", "rows": {source: [row, ...]}}}: one image or video and every train-split
                     row of every source that talks about it, as the row files hold them
OUT/samples.jsonl    the index: one row per training sample (a source row of a record) with what
                     a stage's sequence length needs, so no medium is decoded to plan packed rows
OUT/packed.json      manifest: format, tokenizer fingerprint, per-shard size + SHA-256, counts,
                     rejected media with reasons
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

FORMAT = "kangaroo-packed/2"  # 2: samples.jsonl rows of question sources carry `category`
MANIFEST = "packed.json"
SAMPLES = "samples.jsonl"
LITDATA_INDEX = "index.json"
# Fields of a samples.jsonl row (besides the free-form `key`):
#   record  litdata item index of the record holding the medium and the row
#   shard   chunk file holding that record
#   source  images | image_qa | captions | qa;  position: the row's place in record.rows[source]
#   split   always "train" (eval-split rows are never packed)
#   kind    image | video; duration/start seconds, fps, num_frames, width, height of the medium
#   text_tokens  tokens of the rendered one-turn chat with the visual placeholder as one token
#   category     the question's category (image_qa and qa rows; a stage's `question_categories` filter)


def tokenizer_fingerprint(tokenizer) -> str:
    """Identity of a tokenizer's vocabulary and special tokens (text token counts depend on nothing else)."""
    vocab = sorted(tokenizer.get_vocab().items())
    specials = [tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token]
    blob = json.dumps([vocab, specials], ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def count_text_tokens(tokenizer, turns: list[tuple[str, str]]) -> list[int]:
    """Tokens of each (user text, reply) rendered as a one-turn chat, the visual placeholder counted as one
    token. One tokenizer call for all of them: a fast tokenizer encodes a batch in parallel, and one call
    per sample was the largest part of `kangaroo pack`."""
    from kangaroo.model.processing_kangaroo import render_conversation
    from kangaroo.train.data import conversation

    texts = [
        render_conversation(conversation(user, reply), tokenizer.bos_token, False)[0] for user, reply in turns
    ]
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []


def visual_run_length(processor, num_frames: int, resolution: int) -> int:
    """Tokens the visual placeholder expands to for `num_frames` frames at `resolution` px."""
    groups = -(-num_frames // processor.patchify_temporal)
    return 2 + groups * (processor.tokens_per_group(resolution, resolution) + 1)


def record_meta(key: str, kind: str, name: str, rows: dict[str, list[dict[str, Any]]]) -> str:
    return json.dumps({"key": key, "kind": kind, "name": name, "rows": rows}, sort_keys=True)
