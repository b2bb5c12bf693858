"""The `quality:` block of params.yaml: every threshold of the caption quality gate."""

from kangaroo.settings_base import Section


class QualitySettings(Section):
    """Thresholds of `kangaroo validate`; each maps to one named expectation of the gate."""

    min_caption_words: int = 5  # fewer words cannot say what moves and how: a truncated or failed caption
    max_caption_words: int = 200  # merged 5-frame captions run ~30-120 words; longer is a looping generation
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
    max_exact_duplicate_fraction: float = 0.02  # a few identical stock captions are tolerable, a copy bug not
    max_near_duplicate_fraction: float = 0.05  # same text up to case/punctuation: templates teach nothing
    min_distinct_3gram_ratio: float = 0.5  # below this half the caption repeats itself (degenerate loop)
    expected_frame_captions: int = 5  # must equal caption.num_key_frames
    min_duration_s: float = 1.0  # curation's duration filter already drops shorter clips
    max_duration_s: float = 3600.0  # long-video stage tops out around an hour
    min_kept_fraction: float = 0.05  # below: a filter threshold or the decoder is broken
    max_kept_fraction: float = 0.98  # above: the filters are not running
    min_rows: int = 100000  # fewer captioned videos are not worth a pre-training run
    # Shares that say the run, not the data, went wrong: inputs rejected as unreadable (decode_error or
    # internal_error) among all ledger rows (more: a broken source or run), and kept videos the caption step
    # failed on (more: the captioner is down or broken).
    max_decode_error_fraction: float = 0.05
    max_caption_failure_fraction: float = 0.02
    # Fraction of rows a per-row check may fail before the gate fails (GX `mostly` = 1 - this): 0.1% at web
    # scale.
    max_bad_row_fraction: float = 0.001
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
    # sits here, not in max_bad_row_fraction (text rules have no model error). Tiny SigLIP on the sample
    # corpus with precise captions: 0.7% of clean rows; 11% with 20% of captions shuffled between videos
    # (55% of the shuffled rows caught, the 10 worst rows all shuffled).
    max_misaligned_fraction: float = 0.05
    # Report: frame strips of this many videos per rejection reason, kept videos and worst-aligned rows.
    strip_videos_per_reason: int = 3
    strip_kept_videos: int = 6
    strip_worst_aligned: int = 10
    strip_frames: int = 4
