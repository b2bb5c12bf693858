"""The `quality:` block of params.yaml: every threshold of the caption quality gate."""

from kangaroo.settings_base import Section


class QualitySettings(Section):
    """Thresholds of `kangaroo validate`; each maps to one named expectation of the gate."""

    min_caption_words: int = 3
    max_caption_words: int = 200
    # Captioner refusals, meta-talk about "the image" in a video caption, and echoes of the captioning prompt.
    boilerplate_patterns: tuple[str, ...] = (
        r"(?i)\bas an ai\b",
        r"(?i)\bi cannot\b",
        r"(?i)\bi can't\b",
        r"(?i)\bi'm sorry\b",
        r"(?i)\bthe image shows\b",
        r"(?i)\bin this image\b",
        r"(?i)\bdescribe (?:this|the) (?:video|image|frame)\b",
    )
    # Full-match regex of the characters a caption may contain (whole caption must match).
    allowed_charset_regex: str = r"^[ -~\u00a0-\u024f\u2018\u2019\u201c\u201d\u2013\u2014\u2026]*$"
    max_exact_duplicate_fraction: float = 0.05
    max_near_duplicate_fraction: float = 0.1
    min_distinct_3gram_ratio: float = 0.5
    expected_frame_captions: int = 5
    min_duration_s: float = 0.5
    max_duration_s: float = 7200.0
    min_kept_fraction: float = 0.05
    max_kept_fraction: float = 1.0
    min_rows: int = 1
    # Shares that say the run, not the data, went wrong: inputs rejected as unreadable (decode_error or
    # internal_error) among all ledger rows, and kept videos the caption step failed on.
    max_decode_error_fraction: float = 0.05
    max_caption_failure_fraction: float = 0.02
    # Fraction of rows a per-row check may fail before the gate fails (GX `mostly` = 1 - this).
    max_bad_row_fraction: float = 0.0
    # Offending rows listed per failed expectation in summary.md and index.html.
    worst_offenders: int = 10
