"""Question prompts (lmms-eval's wording per benchmark) and the continuations likelihood mode scores.

``mvbench`` (lmms-eval MVBench; also what the instruction data is rendered with, see
kangaroo.train.data.QUESTION_TEMPLATE) is used for every benchmark except Video-MME, whose lmms-eval task
lists "A. ..." options under a "Respond with only the letter" instruction. The template text is recorded with
every score: the same checkpoint moves ~2 points with the prompt.
"""

from __future__ import annotations

from kangaroo.eval.benchmarks import LETTERS, MCQuestion

TEMPLATES = {
    "mvbench": "Question: {question}\nOptions:\n{options}\nOnly give the best option.",
    "videomme": (
        "Select the best answer to the following multiple-choice question based on the video. "
        "Respond with only the letter ({letters}) of the correct option.\n{question}\n{options}\n"
        "The best answer is:"
    ),
}
# Kept for callers that want the default wording.
PROMPT_TEMPLATE_NAME = "mvbench"
PROMPT_TEMPLATE = TEMPLATES["mvbench"]


def template_for(benchmark_kind: str, setting: str = "auto") -> str:
    """Template name for a benchmark: `setting` itself, or with "auto" the benchmark's lmms-eval wording."""
    if setting != "auto":
        if setting not in TEMPLATES:
            raise ValueError(f"unknown prompt template {setting!r}; known: {', '.join(TEMPLATES)}")
        return setting
    return "videomme" if benchmark_kind == "videomme" else "mvbench"


def format_options(options: tuple[str, ...] | list[str], template: str = "mvbench") -> str:
    if template == "videomme":
        return "\n".join(f"{LETTERS[i]}. {option}" for i, option in enumerate(options))
    return "\n".join(f"({LETTERS[i]}) {option}" for i, option in enumerate(options))


def build_prompt(question: MCQuestion, template: str = "mvbench") -> str:
    """The user turn for one question: question, lettered options, and the answer-format instruction."""
    letters = ", ".join(LETTERS[: question.num_options - 1]) + f", or {LETTERS[question.num_options - 1]}"
    return TEMPLATES[template].format(
        question=question.question.strip(),
        options=format_options(question.options, template),
        letters=letters,
    )


def option_continuations(question: MCQuestion, style: str) -> list[str]:
    """The assistant reply scored per option in likelihood mode (EvalSettings.likelihood_continuation)."""
    if style == "trained_reply":
        # The reply the instruction data teaches, whatever its form (kangaroo.train.data.render_answer).
        from kangaroo.train.data import render_answer

        return [render_answer(list(question.options), LETTERS[i]) for i in range(question.num_options)]
    if style == "letter":
        return [LETTERS[i] for i in range(question.num_options)]
    if style == "option":
        return list(question.options)
    if style == "letter_option":
        return [f"({LETTERS[i]}) {option}" for i, option in enumerate(question.options)]
    raise ValueError(f"unknown likelihood continuation style {style!r}")
