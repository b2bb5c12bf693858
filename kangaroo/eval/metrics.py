"""Accuracy, chance level, per-category breakdown and letter confusion for one scoring mode.

All results are plain dicts/lists (JSON for DVC metrics; the KFP component turns them into `Metrics` and
`ClassificationMetrics`, so the confusion matrix comes with its label list).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence

from kangaroo.eval.benchmarks import LETTERS, MCQuestion

NO_ANSWER = "none"  # the predicted-letter label of a parse failure


def chance_level(questions: Sequence[MCQuestion]) -> float:
    """Expected accuracy of a uniform random guess: the mean of 1 / num_options."""
    return sum(1.0 / q.num_options for q in questions) / len(questions) if questions else 0.0


def chance_band(questions: Sequence[MCQuestion], sigma: float) -> tuple[float, float]:
    """chance +/- `sigma` standard deviations of a guesser's accuracy over these questions.

    A random guesser's number of hits is a sum of independent Bernoulli(1/k_i), whose variance is
    sum p_i (1 - p_i); dividing by n gives the standard deviation of its accuracy.
    """
    n = len(questions)
    chance = chance_level(questions)
    if not n:
        return 0.0, 0.0
    std = math.sqrt(sum((1 / q.num_options) * (1 - 1 / q.num_options) for q in questions)) / n
    return max(0.0, chance - sigma * std), min(1.0, chance + sigma * std)


def confusion(
    questions: Sequence[MCQuestion], predictions: Sequence[str | None]
) -> tuple[list[str], list[list[int]]]:
    """Gold letter (rows) x predicted letter (columns) counts; the last column counts parse failures."""
    width = max((q.num_options for q in questions), default=0)
    labels = list(LETTERS[:width]) + [NO_ANSWER]
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels[:-1]]
    for question, predicted in zip(questions, predictions, strict=True):
        if question.answer is None:
            continue
        matrix[index[question.answer]][index[predicted or NO_ANSWER]] += 1
    return labels, matrix


def _group_accuracy(questions: Sequence[MCQuestion], predictions: Sequence[str | None], key: str) -> dict:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, question in enumerate(questions):
        groups[getattr(question, key)].append(i)
    report = {}
    for name in sorted(groups):
        members = groups[name]
        chosen = [questions[i] for i in members]
        hits = sum(predictions[i] == questions[i].answer for i in members)
        report[name] = {
            "accuracy": hits / len(members),
            "chance": chance_level(chosen),
            "num_questions": len(members),
        }
    return report


def mode_metrics(questions: Sequence[MCQuestion], predictions: Sequence[str | None]) -> dict:
    """Everything one scoring mode reports: overall/per-category/per-task accuracy, confusion, failures."""
    n = len(questions)
    hits = sum(p == q.answer for q, p in zip(questions, predictions, strict=True))
    accuracy = hits / n if n else 0.0
    labels, matrix = confusion(questions, predictions)
    failures = sum(p is None for p in predictions)
    predicted_positions = Counter(p or NO_ANSWER for p in predictions)
    return {
        "accuracy": accuracy,
        # binomial standard error: the resolution at which two runs can be told apart
        "accuracy_stderr": math.sqrt(accuracy * (1 - accuracy) / n) if n else 0.0,
        "num_correct": hits,
        "num_questions": n,
        "chance": chance_level(questions),
        "parse_failure_rate": failures / n if n else 0.0,
        "per_category": _group_accuracy(questions, predictions, "category"),
        "per_task": _group_accuracy(questions, predictions, "task"),
        "predicted_letters": {label: predicted_positions.get(label, 0) for label in labels},
        "confusion": {"labels": labels, "matrix": matrix},
    }


def subset_metrics(
    questions: Sequence[MCQuestion], predictions: Sequence[str | None], category: str
) -> dict | None:
    """`mode_metrics` over one category only (the long-video probes), or None if it has no questions."""
    chosen = [(q, p) for q, p in zip(questions, predictions, strict=True) if q.category == category]
    if not chosen:
        return None
    subset, subset_predictions = zip(*chosen, strict=True)
    return mode_metrics(list(subset), list(subset_predictions))
