"""What a reviewer looks at by eye: frame strips of a few videos per rejection reason, of a sample of kept
videos and of the worst-aligned captions, next to their scores and captions (the seed paper's first check
of curated data is a human look at it)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kangaroo.quality.features import as_text
from kangaroo.quality.settings import QualitySettings
from kangaroo.quality.strips import FrameStrip, frame_strip


@dataclass(frozen=True)
class ReviewRow:
    key: str
    video: str
    strip: FrameStrip
    text: str  # the caption, or the rejection's error
    details: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ReviewSection:
    title: str
    note: str
    rows: list[ReviewRow]


def _number(value: object) -> object:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 3)
    return value


def _row(record: pd.Series, text: str, details: dict, settings: QualitySettings, folder: Path, params):
    video = as_text(record.get("video")) or ""
    strip = (
        frame_strip(video, settings.strip_frames, folder, params) if video else FrameStrip(None, "no video")
    )
    return ReviewRow(as_text(record.get("key")) or video, video, strip, text, details)


def _caption_details(row: pd.Series) -> dict:
    details = {"language": row.get("caption_language"), "words": _number(row.get("caption_words"))}
    if "alignment_margin" in row and not pd.isna(row.get("alignment_margin")):
        details.update(
            own_score=_number(row.get("alignment_score")),
            others_score=_number(row.get("alignment_other_score")),
            margin=_number(row.get("alignment_margin")),
        )
    return details


def review_sections(
    folder: Path, features: pd.DataFrame, ledger: pd.DataFrame, settings: QualitySettings, params=None
) -> list[ReviewSection]:
    """Worst-aligned captions (when scored), rejections per reason, then a random sample of kept videos."""
    sections = []
    if "alignment_margin" in features and features["alignment_margin"].notna().any():
        worst = features[features["alignment_margin"].notna()].nsmallest(
            settings.strip_worst_aligned, "alignment_margin"
        )
        sections.append(
            ReviewSection(
                "Worst caption-video alignment",
                "Lowest margin first: own-video score minus the mean score against random other videos. "
                "Below zero the caption fits other videos as well as its own.",
                [
                    _row(r, r["caption"] or "", _caption_details(r), settings, folder, params)
                    for _, r in worst.iterrows()
                ],
            )
        )
    if len(ledger) and "status" in ledger:
        rejected = ledger[ledger["status"] == "rejected"]
        for reason, group in rejected.groupby(rejected["reason"].fillna("unknown"), sort=True):
            shown = group.head(settings.strip_videos_per_reason)
            rows = [
                _row(r, as_text(r.get("error")) or "", {"scores": r.get("scores")}, settings, folder, params)
                for _, r in shown.iterrows()
            ]
            sections.append(
                ReviewSection(f"Rejected: {reason}", f"{len(shown)} of {len(group)} rejected videos.", rows)
            )
    if len(features):
        rng = np.random.default_rng(settings.alignment_seed)
        count = min(settings.strip_kept_videos, len(features))
        sample = features.iloc[sorted(rng.choice(len(features), size=count, replace=False))]
        sections.append(
            ReviewSection(
                "Kept videos (random sample)",
                f"{count} of {len(features)} captioned videos, with their captions.",
                [
                    _row(r, r["caption"] or "", _caption_details(r), settings, folder, params)
                    for _, r in sample.iterrows()
                ],
            )
        )
    return sections
