"""Prompts: lmms-eval wording per benchmark, and the same user turn the instruction data was trained on."""

import pytest

from kangaroo.eval.benchmarks import MCQuestion
from kangaroo.eval.prompts import build_prompt, option_continuations, template_for

QUESTION = MCQuestion(
    "q", "v.mp4", " What colour is the star? ", ("red", "blue", "green", "white"), "B", "color", "c"
)


def test_mvbench_prompt_is_the_training_prompt():
    from kangaroo.train.data import render_answer, render_question

    assert build_prompt(QUESTION) == render_question(QUESTION.question, list(QUESTION.options))
    assert build_prompt(QUESTION) == (
        "Question: What colour is the star?\nOptions:\n(A) red\n(B) blue\n(C) green\n(D) white\n"
        "Only give the best option."
    )
    # Likelihood mode scores exactly the reply the instruction data teaches, whatever its form.
    continuations = option_continuations(QUESTION, "trained_reply")
    assert continuations == [render_answer(list(QUESTION.options), letter) for letter in "ABCD"]
    assert "blue" in continuations[1] and "B" in continuations[1] and len(set(continuations)) == 4
    assert option_continuations(QUESTION, "letter_option")[1] == "(B) blue"
    assert option_continuations(QUESTION, "option") == ["red", "blue", "green", "white"]
    assert option_continuations(QUESTION, "letter") == ["A", "B", "C", "D"]


def test_videomme_prompt_follows_lmms_eval():
    prompt = build_prompt(QUESTION, template_for("videomme"))
    assert prompt.startswith(
        "Select the best answer to the following multiple-choice question based on the video."
    )
    assert "Respond with only the letter (A, B, C, or D) of the correct option." in prompt
    assert "\nA. red\nB. blue\nC. green\nD. white\nThe best answer is:" in prompt


def test_template_choice():
    assert template_for("sample") == template_for("mvbench") == template_for("egoschema") == "mvbench"
    assert template_for("videomme", "mvbench") == "mvbench"
    with pytest.raises(ValueError, match="unknown prompt template"):
        template_for("sample", "nope")
