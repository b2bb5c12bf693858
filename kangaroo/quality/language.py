"""Text that is not a caption: the wrong language (lingua language id over a set of candidate languages)
and gibberish (keyboard mash) that passes the length, charset and repetition rules."""

from __future__ import annotations

import re
from functools import cache

import pandas as pd

UNDETERMINED = "und"  # ISO 639-2 for "no confident answer": short or mixed alt-text often gets it
_NON_WORDS = re.compile(r"#\w+|https?://\S+|\d+\w*")  # hashtags, links, numbers: no language in them
_ALPHA_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
_VOWELS = set("aeiouyäöüàâéèêëîïôûùáíóúãõåæø")
_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm", "1234567890")
_CONSONANT_RUN = re.compile(r"[bcdfghjklmnpqrstvwxz]{6,}")  # "strengths" has 5


@cache
def _detector(candidates: tuple[str, ...], min_relative_distance: float):
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    languages = [Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())) for code in candidates]
    return (
        LanguageDetectorBuilder.from_languages(*languages)
        .with_minimum_relative_distance(min_relative_distance)
        .build()
    )


def detect_languages(
    captions: list[str | None], candidates: tuple[str, ...], min_relative_distance: float
) -> list[str]:
    """ISO 639-1 code per caption, or "und" when lingua is not confident (or the caption is empty)."""
    detector = _detector(tuple(sorted(candidates)), min_relative_distance)
    texts = [_NON_WORDS.sub(" ", c or "").strip() for c in captions]
    found = detector.detect_languages_in_parallel_of(texts)
    return [
        language.iso_code_639_1.name.lower() if language is not None and text else UNDETERMINED
        for language, text in zip(found, texts, strict=True)
    ]


def _keyboard_run(word: str, length: int = 5) -> bool:
    """5 neighbouring keys of one keyboard row ("qwert"), or the whole 4+ letter word is such a run ("asdf");
    4-key runs inside longer words are English ("liberty")."""
    if len(word) >= 4 and any(word in row for row in _KEYBOARD_ROWS):
        return True
    return any(word[i : i + length] in row for row in _KEYBOARD_ROWS for i in range(len(word) - length + 1))


def is_gibberish_word(word: str) -> bool:
    """A 3+ letter word with no vowel, a run of 6 consonants, or a run of neighbouring keyboard keys."""
    lower = word.lower()
    return not (set(lower) & _VOWELS) or bool(_CONSONANT_RUN.search(lower)) or _keyboard_run(lower)


def gibberish_word_fraction(caption: str | None) -> float:
    """Share of a caption's 3+ letter words that look like keyboard mash (0.0 when it has none)."""
    words = _ALPHA_WORD.findall(caption or "")
    return sum(map(is_gibberish_word, words)) / len(words) if words else 0.0


def language_features(
    captions: pd.Series, candidates: tuple[str, ...], min_relative_distance: float
) -> pd.DataFrame:
    texts = [c if isinstance(c, str) else None for c in captions]
    return pd.DataFrame(
        {
            "caption_language": detect_languages(texts, candidates, min_relative_distance),
            "gibberish_word_fraction": [gibberish_word_fraction(t) for t in texts],
        }
    )
