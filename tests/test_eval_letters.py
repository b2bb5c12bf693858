"""Letter extraction on the messy outputs real models produce."""

import pytest

from kangaroo.eval.letters import extract_letter, strip_think


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("The answer is (B).", "B"),
        ("B) the red one", "B"),
        ("b", "B"),
        ("(c)", "C"),
        ("<think>it could be A..A..</think> D", "D"),
        ("<think>A is wrong because the square is blue", None),  # truncated reasoning, no answer
        ("I think none", None),
        ("", None),
        ("   ", None),
        ("C. blue", "C"),
        ("Answer: d", "D"),
        ("The best answer is E", "E"),
        ("Best option: (A) red", "A"),
        ("[D]", "D"),
        ("After watching the video, the square moves left, so it is C", "C"),
        ("It is option (b).", "B"),
        ("A", "A"),
        ("a red square", "A"),  # leading letter wins, exactly as lmms-eval ranks it
        ("The shape turned green\nB. green", "B"),
        ("I saw it", None),  # "I" is not an option letter when there are five options
        (None, None),
    ],
)
def test_extract_letter_messy_outputs(response, expected):
    assert extract_letter(response, num_options=5) == expected


def test_letters_outside_the_option_range_are_failures():
    assert extract_letter("E", num_options=4) is None
    assert extract_letter("The answer is (F).", num_options=5) is None
    assert extract_letter("F", num_options=6) == "F"


def test_long_rambling_answer_without_anchor_is_a_failure():
    rambling = " ".join(["the shape moves around the screen"] * 6) + " and then D appears"
    assert extract_letter(rambling, num_options=5, max_words=20) is None
    assert extract_letter(rambling + ". The answer is D", num_options=5, max_words=20) == "D"


def test_strip_think_removes_closed_and_open_blocks():
    assert strip_think("<think>x</think>A").strip() == "A"
    assert strip_think("B <think>never closed").strip() == "B"
