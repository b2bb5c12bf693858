"""Positive control of the evaluation: a model trained on the held-out answers must score near 1.

The bias control (a random model scores at chance) shows the evaluation does not invent skill; this one shows
it does not hide skill: `answer_key_corpus` writes a view of a sample corpus whose *training* questions are
its held-out ones, a model trained on that view (packed like any training data) has seen every answer, and
scored on the original corpus's held-out split with the normal evaluation it must reach `min_accuracy`
(tests/test_trained_tiny.py). A mismatch between how the
instruction data renders a question and how the scorer does (prompt, option order, reply format) fails it.
"""

from __future__ import annotations

import json
from pathlib import Path

MEDIA_FOLDERS = ("videos", "motion", "images")


def answer_key_corpus(corpus: str | Path, out: str | Path) -> Path:
    """Write `out`: `corpus`'s held-out questions as training rows (same video, question, options, answer;
    nothing else is trained on), with links to its media folders. Only training rows: `kangaroo pack` leaves
    out every clip an eval-split question asks about, so the view holds none. Returns `out`."""
    corpus, out = Path(corpus), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for folder in MEDIA_FOLDERS:
        if (corpus / folder).is_dir() and not (out / folder).exists():
            (out / folder).symlink_to((corpus / folder).resolve(), target_is_directory=True)
    rows = [json.loads(line) for line in (corpus / "questions.jsonl").read_text().splitlines() if line]
    held_out = [row for row in rows if row.get("split") == "eval"]
    answer_key = [{**row, "question_id": f"key_{row['question_id']}", "split": "train"} for row in held_out]
    (out / "questions.jsonl").write_text("".join(json.dumps(row) + "\n" for row in answer_key))
    return out
