"""A captioned dataset (docs/data-formats.md `dataset.jsonl`) from the sample corpus's ground truth.

Kept clips only, with the synthesiser's reference captions standing in for `kangaroo caption`'s output, so
training, its tests and its benchmark can run before (or without) the curation and captioning stages.
"""

from __future__ import annotations

import json
from pathlib import Path

from kangaroo.train.data import read_jsonl


def write_reference_dataset(corpus_dir: Path, out_dir: Path, split: str | None = "train") -> Path:
    """Write OUT/dataset.jsonl for the corpus's kept clips of `split` (all when None); returns the file."""
    rows = []
    for row in read_jsonl(corpus_dir / "ground_truth.jsonl"):
        if row["expected_status"] != "kept" or (split is not None and row.get("split") != split):
            continue
        rows.append(
            {
                "video": str((corpus_dir / row["video"]).resolve()),
                "key": row["video"],
                "duration": row["duration"],
                "fps": row["fps"],
                "width": row["width"],
                "height": row["height"],
                "scores": {},
                "frame_captions": [],
                "caption": row["reference_caption"],
                "captioner": "reference",
            }
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "dataset.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
