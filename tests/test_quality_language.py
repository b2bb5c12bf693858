"""Text that is not a caption fails the gate: a German caption set, lorem-ipsum filler (unique text per row)
and keyboard mash, each passing the length, charset and repetition rules; the clean English set passes."""

from __future__ import annotations

import pytest
from test_quality_gate import ROWS, SETTINGS, ledger_for, with_captions, write_dataset

from kangaroo.quality.language import detect_languages, gibberish_word_fraction
from kangaroo.quality.runner import run_quality_gate

FARBEN = ("roter", "grüner", "blauer", "gelber", "violetter", "oranger")
FORMEN = ("Kreis", "Würfel", "Stern", "Ring", "Punkt")
RICHTUNGEN = ("links", "rechts", "oben", "unten")


def german(i: int) -> str:
    return (
        f"Ein {FARBEN[i % 6]} {FORMEN[i % 5]} bewegt sich nach {RICHTUNGEN[i % 4]} über einen grauen "
        f"Hintergrund. Nach {3 + i * 0.5:.1f} Sekunden wird er dunkler, und ein kleiner Punkt erscheint in "
        "der Ecke."
    )


def lorem(i: int) -> str:
    words = ("sed do eiusmod", "tempor incididunt", "ut labore et", "dolore magna aliqua", "ut enim ad minim")
    return f"Lorem ipsum dolor sit amet, consectetur adipiscing elit, {words[i % 5]} {i} veniam quis nostrud."


def mash(i: int) -> str:
    return f"qwerty asdfgh zxcvbn {i} sdfgh jkl qwert hjkl xcvbn asdf {i * 7} wertyu"


CASES = {
    "german": ({i: german(i) for i in range(len(ROWS))}, {"caption_language"}),
    "lorem_ipsum": ({i: lorem(i) for i in range(len(ROWS))}, {"caption_language", "caption_no_filler"}),
    "keyboard_mash": ({i: mash(i) for i in range(0, len(ROWS), 4)}, {"caption_not_gibberish"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_text_that_is_not_an_english_caption_fails_the_gate(case, tmp_path):
    captions, expected = CASES[case]
    rows = with_captions(ROWS, captions)
    assert len({r["caption"] for r in rows}) == len(rows)  # unique text: the duplicate checks stay quiet
    gate = run_quality_gate(
        write_dataset(tmp_path / "d", rows, ledger_for(rows, 12)), tmp_path / "r", SETTINGS
    )
    assert not gate.success
    assert set(gate.failed_expectations) == expected
    summary = gate.markdown_path.read_text()
    assert "`clip_0000`" in summary


def test_clean_english_captions_are_english_or_undetermined_and_not_gibberish():
    languages = detect_languages([r["caption"] for r in ROWS], SETTINGS.language_candidates, 0.1)
    assert set(languages) <= {"en", "und"} and languages.count("en") >= 0.9 * len(ROWS)
    assert detect_languages([german(1), lorem(2), ""], SETTINGS.language_candidates, 0.1) == [
        "de",
        "la",
        "und",
    ]
    assert max(gibberish_word_fraction(r["caption"]) for r in ROWS) == 0.0
    assert gibberish_word_fraction(mash(3)) > 0.8
