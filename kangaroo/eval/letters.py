"""Pull the chosen option letter out of a free-form answer, the way lmms-eval's video MCQ tasks do.

Formats are tried in rank order (first match wins), after `<think>...</think>` blocks are removed:

1. an explicit answer phrase: "The answer is (B)", "Best option: c", "Answer: D";
2. a leading option: "B", "B.", "(B) the red one", "b) red", "[C]";
3. MVBench's "X." form anywhere at a line start;
4. a trailing letter: "... so it is D" / "... (c)";
5. the first standalone capital A-E-style letter within the options' range (lmms-eval's fallback).

Lower-case letters count only in the anchored forms (1, 2, 4), where "a" cannot be the article. A response
longer than `max_words` words without an anchored form is a parse failure, as is anything naming no letter.
"""

from __future__ import annotations

import re
import string

THINK_BLOCK = re.compile(r"<think>.*?(</think>|$)", re.IGNORECASE | re.DOTALL)
ANSWER_PHRASES = (
    r"the\s+best\s+answer\s+is",
    r"the\s+correct\s+answer\s+is",
    r"the\s+answer\s+is",
    r"the\s+best\s+option\s+is",
    r"the\s+correct\s+option\s+is",
    r"best\s+answer\s*:",
    r"best\s+option\s*:",
    r"answer\s*:",
    r"option\s*:",
)


def _letters_class(num_options: int, lower: bool) -> str:
    upper = string.ascii_uppercase[:num_options]
    return f"[{upper}{upper.lower()}]" if lower else f"[{upper}]"


def strip_think(text: str) -> str:
    """Remove reasoning blocks (closed or left open by a truncated generation)."""
    return THINK_BLOCK.sub(" ", text)


def extract_letter(response: str, num_options: int = 5, max_words: int = 20) -> str | None:
    """The option letter a response chose, upper-case, or None when it names none (a parse failure)."""
    text = strip_think(response or "").strip()
    if not text:
        return None
    any_case = _letters_class(num_options, lower=True)
    upper = _letters_class(num_options, lower=False)
    bracketed = rf"[\(\[]?({any_case})[\)\]]?"

    for phrase in ANSWER_PHRASES:
        match = re.search(rf"{phrase}\s*:?\s*(?:option\s+)?{bracketed}(?![A-Za-z])", text, re.IGNORECASE)
        if match:
            return match.group(1).upper()

    match = re.match(rf"^\s*{bracketed}(?:[.):,\s]|$)", text)
    if match:
        return match.group(1).upper()

    match = re.search(rf"(?m)^\s*({upper})\.\s", text)
    if match:
        return match.group(1)

    match = re.search(rf"(?:^|[\s(\[])[\(\[]?({any_case})[\)\]]?[.!]?\s*$", text)
    if match and (match.group(1).isupper() or len(text.split()) <= 3 or "(" in match.group(0)):
        return match.group(1).upper()

    if len(text.split()) > max_words:
        return None
    match = re.search(rf"(?<![A-Za-z'])({upper})(?![A-Za-z'])", text)
    return match.group(1) if match else None
