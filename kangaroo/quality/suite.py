"""The named checks of the caption quality gate, as GX 1.x expectations built from `QualitySettings`.

Each check has a stable name (stored in the expectation's `meta["check"]`) that the summary, the JSON
result and the CLI message use. Row-level checks report their offending rows through GX's
`unexpected_index_list`. Dataset-level values (duplicate fractions, kept fraction) are checked on a one-row
summary batch; duplicate checks name a boolean feature column that marks the rows responsible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import great_expectations as gx
from great_expectations.expectations import Expectation

from kangaroo.quality.language import UNDETERMINED
from kangaroo.quality.settings import QualitySettings

CAPTIONS_BATCH = "captions"
DATASET_BATCH = "dataset"


@dataclass(frozen=True)
class Check:
    """One named expectation of the gate, on the per-video batch or on the one-row dataset batch."""

    name: str
    batch: Literal["captions", "dataset"]
    expectation: Expectation
    what: str
    offender_flag: str | None = None  # boolean feature column marking offending rows (aggregate checks)
    offender_value: str | None = None  # feature column shown next to those rows


def build_checks(settings: QualitySettings, alignment: bool = False) -> list[Check]:
    """All checks of the gate, configured from the `quality:` block of params.yaml; the caption-video
    alignment checks only when the gate has an alignment model (`alignment`)."""
    e = gx.expectations
    mostly = 1.0 - settings.max_bad_row_fraction
    s = settings
    charset = s.allowed_charset_regex
    specs = [
        Check(
            "caption_not_null",
            CAPTIONS_BATCH,
            e.ExpectColumnValuesToNotBeNull(column="caption"),
            "every video has a caption",
        ),
        Check(
            "caption_not_empty",
            CAPTIONS_BATCH,
            e.ExpectColumnValueLengthsToBeBetween(column="caption_stripped", min_value=1, mostly=mostly),
            "no caption is empty or whitespace",
        ),
        Check(
            "caption_word_count",
            CAPTIONS_BATCH,
            e.ExpectColumnValuesToBeBetween(
                column="caption_words",
                min_value=s.min_caption_words,
                max_value=s.max_caption_words,
                mostly=mostly,
            ),
            f"caption length between {s.min_caption_words} and {s.max_caption_words} words",
        ),
        Check(
            "caption_exact_duplicates",
            DATASET_BATCH,
            e.ExpectColumnValuesToBeBetween(
                column="exact_duplicate_fraction", min_value=0.0, max_value=s.max_exact_duplicate_fraction
            ),
            f"at most {s.max_exact_duplicate_fraction:.0%} of captions repeat an earlier caption exactly",
            offender_flag="is_exact_duplicate",
            offender_value="caption",
        ),
        Check(
            "caption_near_duplicates",
            DATASET_BATCH,
            e.ExpectColumnValuesToBeBetween(
                column="near_duplicate_fraction", min_value=0.0, max_value=s.max_near_duplicate_fraction
            ),
            f"at most {s.max_near_duplicate_fraction:.0%} of captions repeat an earlier one up to case and "
            "punctuation",
            offender_flag="is_near_duplicate",
            offender_value="caption_normalised",
        ),
        Check(
            "caption_no_boilerplate",
            CAPTIONS_BATCH,
            e.ExpectColumnValuesToNotMatchRegexList(
                column="caption", regex_list=list(s.boilerplate_patterns), mostly=mostly
            ),
            "no captioner boilerplate or prompt echo",
        ),
        Check(
            "caption_not_repetitive",
            CAPTIONS_BATCH,
            e.ExpectColumnValuesToBeBetween(
                column="distinct_3gram_ratio", min_value=s.min_distinct_3gram_ratio, mostly=mostly
            ),
            f"distinct 3-gram ratio >= {s.min_distinct_3gram_ratio}",
        ),
        Check(
            "caption_charset",
            CAPTIONS_BATCH,
            e.ExpectColumnValuesToMatchRegex(column="caption", regex=charset, mostly=mostly),
            "captions hold only printable characters of the expected charset",
        ),
        Check(
            "frame_caption_charset",
            CAPTIONS_BATCH,
            e.ExpectColumnValuesToMatchRegex(column="frame_captions_text", regex=charset, mostly=mostly),
            "frame captions hold only printable characters of the expected charset",
        ),
        Check(
            "frame_caption_count",
            CAPTIONS_BATCH,
            e.ExpectColumnValuesToBeBetween(
                column="num_frame_captions",
                min_value=s.expected_frame_captions,
                max_value=s.expected_frame_captions,
                mostly=mostly,
            ),
            f"exactly {s.expected_frame_captions} frame captions per video (one per key frame)",
        ),
        Check(
            "frame_captions_not_empty",
            CAPTIONS_BATCH,
            e.ExpectColumnValuesToBeBetween(column="empty_frame_captions", max_value=0, mostly=mostly),
            "no frame caption is empty",
        ),
        Check(
            "frame_times_within_duration",
            CAPTIONS_BATCH,
            e.ExpectColumnValuesToBeInSet(
                column="frame_times_within_duration", value_set=[True], mostly=mostly
            ),
            "frame-caption timestamps lie within [0, duration]",
        ),
        Check(
            "frame_times_increasing",
            CAPTIONS_BATCH,
            e.ExpectColumnValuesToBeInSet(column="frame_times_increasing", value_set=[True], mostly=mostly),
            "frame-caption timestamps strictly increase",
        ),
        Check(
            "duration_range",
            CAPTIONS_BATCH,
            e.ExpectColumnValuesToBeBetween(
                column="duration", min_value=s.min_duration_s, max_value=s.max_duration_s, mostly=mostly
            ),
            f"video durations between {s.min_duration_s} s and {s.max_duration_s} s",
        ),
        Check(
            "row_count",
            CAPTIONS_BATCH,
            e.ExpectTableRowCountToBeBetween(min_value=s.min_rows),
            f"at least {s.min_rows} captioned videos",
        ),
        Check(
            "kept_fraction",
            DATASET_BATCH,
            e.ExpectColumnValuesToBeBetween(
                column="kept_fraction", min_value=s.min_kept_fraction, max_value=s.max_kept_fraction
            ),
            f"curation kept between {s.min_kept_fraction:.0%} and {s.max_kept_fraction:.0%} of its inputs",
        ),
        Check(
            "decode_error_fraction",
            DATASET_BATCH,
            e.ExpectColumnValuesToBeBetween(
                column="decode_error_fraction", min_value=0.0, max_value=s.max_decode_error_fraction
            ),
            f"at most {s.max_decode_error_fraction:.0%} of curation inputs rejected as unreadable "
            "(decode_error, internal_error): more means a broken run or source, not bad files",
        ),
        Check(
            "caption_failure_fraction",
            DATASET_BATCH,
            e.ExpectColumnValuesToBeBetween(
                column="caption_failure_fraction", min_value=0.0, max_value=s.max_caption_failure_fraction
            ),
            f"the caption step failed on at most {s.max_caption_failure_fraction:.0%} of kept videos",
        ),
        Check(
            "caption_language",
            CAPTIONS_BATCH,
            e.ExpectColumnValuesToBeInSet(
                column="caption_language", value_set=[*s.languages, UNDETERMINED], mostly=mostly
            ),
            f"captions are in {', '.join(s.languages)} (lingua language id; undetermined passes)",
        ),
        Check(
            "caption_no_filler",
            CAPTIONS_BATCH,
            e.ExpectColumnValuesToNotMatchRegexList(
                column="caption", regex_list=list(s.filler_patterns), mostly=mostly
            ),
            "no placeholder or filler text (lorem ipsum, 'caption here')",
        ),
        Check(
            "caption_not_gibberish",
            CAPTIONS_BATCH,
            e.ExpectColumnValuesToBeBetween(
                column="gibberish_word_fraction", max_value=s.max_gibberish_word_fraction, mostly=mostly
            ),
            f"at most {s.max_gibberish_word_fraction:.0%} of a caption's words look like keyboard mash",
        ),
    ]
    if alignment:
        specs += [
            Check(
                "alignment_scored",
                CAPTIONS_BATCH,
                e.ExpectColumnValuesToBeInSet(column="alignment_scored", value_set=[True], mostly=mostly),
                "every row holds its video's embedding from the gate's alignment model",
            ),
            Check(
                "caption_video_alignment",
                CAPTIONS_BATCH,
                e.ExpectColumnValuesToBeBetween(
                    column="alignment_margin", min_value=0.0, mostly=1.0 - s.max_misaligned_fraction
                ),
                f"a caption scores higher with its own video than with {s.alignment_others} random other "
                f"videos on average (CLIP-family model), for all but {s.max_misaligned_fraction:.0%} of rows",
            ),
        ]
    for check in specs:
        check.expectation.meta = {"check": check.name, "what": check.what}
    return specs
