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
    # Fraction of rows a per-row check may fail before the gate fails (GX `mostly` = 1 - this).
    max_bad_row_fraction: float = 0.0
    # Offending rows listed per failed expectation in summary.md and index.html.
    worst_offenders: int = 10
    # Caption language: lingua picks among `language_candidates`; a caption passes when the language is one of
    # `languages` or undetermined (lingua not confident: short alt-text). Candidates must include `languages`.
    languages: tuple[str, ...] = ("en",)
    language_candidates: tuple[str, ...] = (
        "en", "de", "fr", "es", "it", "pt", "nl", "la", "pl", "sv", "da", "tr", "id", "vi",
    )  # fmt: skip
    language_min_relative_distance: float = 0.1
    # Filler text a captioner or a placeholder left behind (whole-caption regex search, case-insensitive).
    filler_patterns: tuple[str, ...] = (
        r"(?i)\blorem ipsum\b",
        r"(?i)\bdolor sit amet\b",
        r"(?i)\bconsectetur adipiscing\b",
        r"(?i)\b(?:insert|add) (?:a )?caption\b",
        r"(?i)\bcaption (?:goes )?here\b",
    )
    # Keyboard mash: share of a caption's 3+ letter words with no vowel or a run of neighbouring keys.
    max_gibberish_word_fraction: float = 0.3
    # Caption-video alignment: a row fails when its caption scores lower against its own video than against
    # `alignment_others` random other videos on average (kangaroo.quality.alignment).
    alignment_others: int = 8
    alignment_seed: int = 0
    # Rows the alignment check may fail before the gate fails: the alignment model's own error on clean rows
    # sits here, not in max_bad_row_fraction (text rules have no model error).
    max_misaligned_fraction: float = 0.05
    # Report: frame strips of this many videos per rejection reason, kept videos and worst-aligned rows.
    strip_videos_per_reason: int = 3
    strip_kept_videos: int = 6
    strip_worst_aligned: int = 10
    strip_frames: int = 4
