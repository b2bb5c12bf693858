"""The question prompt every checkpoint is scored with (lmms-eval's MVBench wording) and its continuations."""

from __future__ import annotations

from kangaroo.eval.benchmarks import LETTERS, MCQuestion

PROMPT_TEMPLATE_NAME = "lmms-eval-mvbench"
# lmms-eval's MVBench doc_to_text + post_prompt; recorded verbatim with every score.
PROMPT_TEMPLATE = "Question: {question}\nOptions:\n{options}\nOnly give the best option."


def format_options(options: tuple[str, ...] | list[str]) -> str:
    return "\n".join(f"({LETTERS[i]}) {option}" for i, option in enumerate(options))


def build_prompt(question: MCQuestion) -> str:
    """The user turn for one question: question, lettered options, and the answer-format instruction."""
    options = format_options(question.options)
    return PROMPT_TEMPLATE.format(question=question.question.strip(), options=options)


def option_continuations(question: MCQuestion, style: str) -> list[str]:
    """The assistant reply scored per option in likelihood mode (EvalSettings.likelihood_continuation)."""
    if style == "letter":
        return [LETTERS[i] for i in range(question.num_options)]
    if style == "option":
        return list(question.options)
    if style == "letter_option":
        return [f"({LETTERS[i]}) {option}" for i, option in enumerate(question.options)]
    raise ValueError(f"unknown likelihood continuation style {style!r}")
