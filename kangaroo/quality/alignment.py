"""Caption-video alignment features: the gate re-embeds the captions it gates with the alignment model and
scores each against its own video's stored embedding and against other videos'.

A caption that belongs to another video (rows shuffled by a join bug, a captioner answering the wrong
request) scores no better with "its" video than with a random one: `alignment_margin` = own score minus the
mean score against `alignment_others` random other videos is then below zero. Captioning stored the video
embeddings (dataset.jsonl `alignment.video_embedding`), so the gate decodes no video for this.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from kangaroo.curation.alignment import AlignmentScorer, decode_embedding

CHUNK_ROWS = 4096  # rows scored against their others at once: bounded memory at any dataset size


def _stored_embedding(value: object, model: str) -> np.ndarray | None:
    if not isinstance(value, dict) or value.get("model") != model:
        return None
    try:
        return decode_embedding(value["video_embedding"])
    except (KeyError, TypeError, ValueError):
        return None


def alignment_features(rows: pd.DataFrame, scorer: AlignmentScorer, others: int, seed: int) -> pd.DataFrame:
    """Columns alignment_scored (the row holds this model's video embedding), alignment_score,
    alignment_other_score and alignment_margin (NaN where not scored), in row order."""
    count = len(rows)
    stored = rows["alignment"] if "alignment" in rows.columns else pd.Series([None] * count)
    videos = [_stored_embedding(v, scorer.name) for v in stored]
    captions = [c if isinstance(c, str) else "" for c in rows["caption"]]
    scored = np.array([v is not None and bool(c.strip()) for v, c in zip(videos, captions, strict=True)])
    own = np.full(count, math.nan)
    other = np.full(count, math.nan)
    index = np.flatnonzero(scored)
    if len(index):
        video_matrix = np.stack([videos[i] for i in index])
        rng = np.random.default_rng(seed)
        k = min(others, len(index) - 1)
        for start in range(0, len(index), CHUNK_ROWS):
            part = index[start : start + CHUNK_ROWS]
            text = scorer.text_embeddings([captions[i] for i in part])
            positions = np.arange(start, start + len(part))
            own[part] = np.einsum("nd,nd->n", text, video_matrix[positions])
            if k > 0:
                # k distinct other rows each: draw from n-1 positions and skip the row's own
                draws = np.stack([rng.choice(len(index) - 1, size=k, replace=False) for _ in part])
                draws += draws >= positions[:, None]
                other[part] = np.einsum("nd,nkd->nk", text, video_matrix[draws]).mean(axis=1)
    return pd.DataFrame(
        {
            "alignment_scored": scored,
            "alignment_score": own,
            "alignment_other_score": other,
            "alignment_margin": own - other,
        }
    )
