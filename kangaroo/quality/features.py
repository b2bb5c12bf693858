"""Derived columns the expectations check, computed once in pandas before GX runs."""

from __future__ import annotations

import math
import re

import pandas as pd

_WORD = re.compile(r"\w+", re.UNICODE)
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")

# Columns handed to GX: scalars only (GX renders and compares values; lists of dicts would not serialise).
CAPTION_COLUMNS = (
    "row_id",
    "video",
    "key",
    "caption",
    "caption_stripped",
    "caption_words",
    "distinct_3gram_ratio",
    "caption_normalised",
    "is_exact_duplicate",
    "is_near_duplicate",
    "duration",
    "num_frame_captions",
    "empty_frame_captions",
    "frame_captions_text",
    "frame_times_within_duration",
    "frame_times_increasing",
)


def as_text(value: object) -> str | None:
    """A caption as text; None/NaN stay None so null checks see them."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value if isinstance(value, str) else str(value)


def words_of(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def distinct_3gram_ratio(text: str | None) -> float:
    """Distinct word 3-grams / all 3-grams; 1.0 when a caption is too short to repeat itself."""
    if text is None:
        return math.nan
    words = words_of(text)
    trigrams = list(zip(words, words[1:], words[2:], strict=False))
    return len(set(trigrams)) / len(trigrams) if trigrams else 1.0


def normalise_caption(text: str | None) -> str | None:
    """Lower-case alphanumerics with single spaces: captions that differ only in case/punctuation collide."""
    if text is None:
        return None
    return _NOT_ALNUM.sub(" ", text.lower()).strip()


def _frame_list(value: object) -> list[dict]:
    return [f for f in value if isinstance(f, dict)] if isinstance(value, list) else []


def _frame_time(frame: dict) -> float:
    t = frame.get("t")
    return float(t) if isinstance(t, int | float) and not isinstance(t, bool) else math.nan


def _within_duration(frames: list[dict], duration: float) -> bool:
    times = [_frame_time(f) for f in frames]
    # NaN compares False, so a missing time or duration fails the check.
    return all(0.0 <= t <= duration for t in times)


def _increasing(frames: list[dict]) -> bool:
    times = [_frame_time(f) for f in frames]
    return all(later > earlier for earlier, later in zip(times, times[1:], strict=False))


def _row_id(row: pd.Series, position: int) -> str:
    for column in ("key", "video"):
        value = as_text(row.get(column))
        if value:
            return value
    return f"row {position + 1}"


def caption_features(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per video with the derived columns of CAPTION_COLUMNS (input order kept)."""
    captions = [as_text(v) for v in rows["caption"]]
    frames = [_frame_list(v) for v in rows["frame_captions"]]
    durations = pd.to_numeric(rows["duration"], errors="coerce").astype(float)
    normalised = [normalise_caption(c) for c in captions]
    features = pd.DataFrame(
        {
            "row_id": [_row_id(row, i) for i, (_, row) in enumerate(rows.iterrows())],
            "video": [as_text(v) for v in rows["video"]],
            "key": [as_text(v) for v in rows["key"]],
            "caption": captions,
            "caption_stripped": [c.strip() if c is not None else None for c in captions],
            "caption_words": [float(len(words_of(c))) if c is not None else math.nan for c in captions],
            "distinct_3gram_ratio": [distinct_3gram_ratio(c) for c in captions],
            "caption_normalised": normalised,
            "duration": durations.to_numpy(),
            "num_frame_captions": [len(f) for f in frames],
            "empty_frame_captions": [
                sum(not (as_text(x.get("caption")) or "").strip() for x in f) for f in frames
            ],
            "frame_captions_text": [" | ".join(as_text(x.get("caption")) or "" for x in f) for f in frames],
            "frame_times_within_duration": [
                _within_duration(f, d) for f, d in zip(frames, durations, strict=True)
            ],
            "frame_times_increasing": [_increasing(f) for f in frames],
        }
    )
    present = features["caption_stripped"].notna() & (features["caption_stripped"] != "")
    features["is_exact_duplicate"] = present & features["caption"].duplicated(keep=False)
    near_present = features["caption_normalised"].notna() & (features["caption_normalised"] != "")
    features["is_near_duplicate"] = near_present & features["caption_normalised"].duplicated(keep=False)
    return features.loc[:, list(CAPTION_COLUMNS)]


def _repeat_fraction(values: pd.Series) -> float:
    """Fraction of present, non-empty values that repeat an earlier one (0.0 when there are none)."""
    present = values[[isinstance(v, str) and bool(v.strip()) for v in values]]
    return float(present.duplicated().sum() / len(present)) if len(present) else 0.0


UNREADABLE_REASONS = ("decode_error", "internal_error")


def dataset_summary(ledger: pd.DataFrame, features: pd.DataFrame, caption_failures: int = 0) -> pd.DataFrame:
    """The one-row dataset-level frame: what curation kept, how many captioned rows, how much repeats, and
    the shares of unreadable inputs and of caption failures."""
    total = len(ledger)
    kept = int((ledger["status"] == "kept").sum()) if total else 0
    unreadable = int(ledger["reason"].isin(UNREADABLE_REASONS).sum()) if total else 0
    attempted = caption_failures + len(features)
    return pd.DataFrame(
        {
            "ledger_rows": [total],
            "ledger_kept": [kept],
            "kept_fraction": [kept / total if total else math.nan],
            "dataset_rows": [len(features)],
            "exact_duplicate_fraction": [_repeat_fraction(features["caption"])],
            "near_duplicate_fraction": [_repeat_fraction(features["caption_normalised"])],
            "decode_error_fraction": [unreadable / total if total else 0.0],
            "caption_failure_fraction": [caption_failures / attempted if attempted else 0.0],
        }
    )


def rejection_counts(ledger: pd.DataFrame) -> pd.Series:
    """Rejected inputs per filter (the ledger's `reason`), largest first."""
    rejected = ledger[ledger["status"] == "rejected"]
    reasons = rejected["reason"].fillna("unknown").astype(str)
    return reasons.value_counts().sort_values(ascending=False)
