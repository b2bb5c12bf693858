"""The pandas side of the gate: derived columns and dataset reading, on small literal inputs."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from kangaroo.quality.dataset import DatasetError, load_captioned_dataset
from kangaroo.quality.features import (
    caption_features,
    dataset_summary,
    distinct_3gram_ratio,
    normalise_caption,
    rejection_counts,
)


def frames(*times: float) -> list[dict]:
    return [{"t": t, "caption": f"a red circle at {t}"} for t in times]


def test_distinct_3gram_ratio_counts_repeated_word_triples():
    assert distinct_3gram_ratio("a b c a b c a b c") == pytest.approx(3 / 7)
    assert distinct_3gram_ratio("A red circle moves left, then turns blue.") == 1.0
    assert distinct_3gram_ratio("two words") == 1.0
    assert math.isnan(distinct_3gram_ratio(None))


def test_normalised_captions_ignore_case_punctuation_and_spacing():
    assert normalise_caption("A Red,  circle -- moves LEFT!") == "a red circle moves left"
    assert normalise_caption("A red circle moves left.") == normalise_caption("a RED circle moves left")
    assert normalise_caption(None) is None


def test_timestamp_and_count_columns():
    rows = pd.DataFrame(
        {
            "video": ["v/a.mp4", "v/b.mp4", "v/c.mp4", "v/d.mp4", "v/e.mp4"],
            "key": ["a", "b", "c", "d", None],
            "caption": ["ok caption one", "ok caption two", None, "  ", "ok caption five"],
            "duration": [10.0, 10.0, 10.0, None, 10.0],
            "frame_captions": [
                frames(1, 3, 5),
                frames(1, 5, 3),
                frames(1, 3, 11),
                frames(1, 2),
                "not a list",
            ],
        }
    )
    features = caption_features(rows).set_index("row_id")
    assert list(features.index) == ["a", "b", "c", "d", "v/e.mp4"]  # key, else the video path
    assert features["frame_times_increasing"].to_dict() == {"a": True, "b": False, "c": True, "d": True,
                                                            "v/e.mp4": True}  # fmt: skip
    # Beyond the duration, or no duration at all, both fail.
    assert features["frame_times_within_duration"].to_dict() == {"a": True, "b": True, "c": False, "d": False,
                                                                 "v/e.mp4": True}  # fmt: skip
    assert features["num_frame_captions"].tolist() == [3, 3, 3, 2, 0]
    assert pd.isna(features.loc["c", "caption"]) and math.isnan(features.loc["c", "caption_words"])
    assert features.loc["d", "caption_stripped"] == "" and features.loc["a", "caption_words"] == 3


def test_duplicate_fractions_count_repeats_of_earlier_captions():
    rows = pd.DataFrame(
        {
            "video": list("abcdef"),
            "key": list("abcdef"),
            "caption": ["Same text.", "Same text.", "same TEXT", "other", None, ""],
            "duration": [5.0] * 6,
            "frame_captions": [frames(1)] * 6,
        }
    )
    features = caption_features(rows)
    ledger = pd.DataFrame(
        {"status": ["kept"] * 6 + ["rejected"] * 2, "reason": [None] * 6 + ["duration", None]}
    )
    summary = dataset_summary(ledger, features).iloc[0]
    assert summary["exact_duplicate_fraction"] == pytest.approx(1 / 4)  # of 4 non-empty captions
    assert summary["near_duplicate_fraction"] == pytest.approx(2 / 4)
    assert summary["kept_fraction"] == pytest.approx(6 / 8)
    assert features["is_exact_duplicate"].tolist() == [True, True, False, False, False, False]
    assert features["is_near_duplicate"].tolist() == [True, True, True, False, False, False]
    assert rejection_counts(ledger).to_dict() == {"duration": 1, "unknown": 1}


def test_bad_jsonl_line_is_named(tmp_path):
    (tmp_path / "dataset.jsonl").write_text('{"key": "a"}\n{"key": \n')
    (tmp_path / "ledger.jsonl").write_text("")
    with pytest.raises(DatasetError, match=r"dataset.jsonl:2: not valid JSON"):
        load_captioned_dataset(tmp_path)
    with pytest.raises(DatasetError, match="dataset folder not found"):
        load_captioned_dataset(tmp_path / "missing")
