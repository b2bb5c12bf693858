"""Is a score distinguishable from guessing? The bias control and the trained-checkpoint done-check.

A guesser's accuracy over n questions with k_i options has mean sum(1/k_i)/n and standard deviation
sqrt(sum (1/k_i)(1-1/k_i))/n; "at chance" means inside chance +/- `chance_sigma` of those deviations.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from kangaroo.eval.benchmarks import MCQuestion
from kangaroo.eval.metrics import chance_band

WORD = re.compile(r"[\w:]+")


def band_for(chance: float, num_questions: int, sigma: float) -> tuple[float, float]:
    """chance +/- sigma binomial standard deviations, for `num_questions` questions of equal chance."""
    if num_questions <= 0:
        return 0.0, 1.0
    std = math.sqrt(chance * (1 - chance) / num_questions)
    return max(0.0, chance - sigma * std), min(1.0, chance + sigma * std)


def chance_report(
    metrics: dict[str, Any], sigma: float, min_ratio: float, mode: str | None = None
) -> dict[str, Any]:
    """Headline (or `mode`) accuracy against chance: the ratio, the guessing band, categories at chance."""
    block = metrics[mode] if mode else metrics
    accuracy, chance, n = block["accuracy"], block["chance"], block["num_questions"]
    low, high = band_for(chance, n, sigma)
    categories = {}
    for name, entry in block["per_category"].items():
        cat_low, cat_high = band_for(entry["chance"], entry["num_questions"], sigma)
        categories[name] = {
            **entry,
            "ratio_over_chance": entry["accuracy"] / entry["chance"] if entry["chance"] else 0.0,
            "at_chance": cat_low <= entry["accuracy"] <= cat_high,
        }
    return {
        "mode": mode or metrics.get("headline_mode"),
        "accuracy": accuracy,
        "chance": chance,
        "num_questions": n,
        "ratio_over_chance": accuracy / chance if chance else 0.0,
        "chance_band": [low, high],
        "at_chance": low <= accuracy <= high,
        "meets_min_ratio": accuracy >= min_ratio * chance,
        "categories_at_chance": sorted(name for name, entry in categories.items() if entry["at_chance"]),
        "per_category": categories,
    }


def answer_agnostic_accuracies(questions: Sequence[MCQuestion]) -> dict[str, float]:
    """Accuracy of predictors that never look at the video: always letter X, longest / shortest option.

    On a benchmark whose answers are balanced over positions and whose distractors share the answers'
    vocabulary, all of these sit at chance; if one does not, the benchmark itself leaks the answer.
    """
    width = max(q.num_options for q in questions)
    results = {}
    for position in range(width):
        letter = chr(ord("A") + position)
        results[f"always_{letter}"] = sum(q.answer == letter for q in questions) / len(questions)
    for name, pick in (("longest_option", max), ("shortest_option", min)):
        hits = 0
        for q in questions:
            index = pick(range(q.num_options), key=lambda i, q=q: (len(q.options[i]), -i))
            hits += q.answer == chr(ord("A") + index)
        results[name] = hits / len(questions)
    return results


def wording_features(question: MCQuestion, index: int) -> list[tuple[str, ...]]:
    """What a predictor without the video can key on for one option: its words, each paired with each of the
    question's words (e.g. the second asked about), and how many other options share each of its words."""
    words = WORD.findall(question.options[index].lower())
    others = [set(WORD.findall(o.lower())) for k, o in enumerate(question.options) if k != index]
    asked = WORD.findall(question.question.lower())
    features = [("word", w) for w in words]
    features += [("asked", a, w) for a in asked for w in words]
    features += [("shared", w, str(sum(w in o for o in others))) for w in words]
    return [(question.category, *f) for f in features]


def wording_baseline_accuracies(
    train: Sequence[MCQuestion], held_out: Sequence[MCQuestion]
) -> dict[str, float]:
    """Per-category held-out accuracy of a naive-Bayes predictor fitted on `train` that reads only the
    words of the question and options (`wording_features`), never the video.

    It catches what the fixed answer-agnostic rules cannot: answers given away by which kind of event an
    option names, at which second, beside which other options. If it scores above chance, the wording, not
    the video, answers part of the benchmark.
    """
    hits, totals = wording_baseline_hits(train, held_out)
    return {category: hits[category] / totals[category] for category in sorted(totals)}


def wording_baseline_hits(
    train: Sequence[MCQuestion], held_out: Sequence[MCQuestion]
) -> tuple[Counter[str], Counter[str]]:
    """(hits, questions) per category of `wording_baseline_accuracies`; a tie of m options scores 1/m."""
    seen: Counter[tuple[str, ...]] = Counter()
    answered: Counter[tuple[str, ...]] = Counter()
    for q in train:
        for i in range(q.num_options):
            for feature in wording_features(q, i):
                seen[feature] += 1
                answered[feature] += i == q.answer_index
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for q in held_out:
        # each feature's log-odds of "this option is the answer" against the 1 : (k - 1) prior, smoothed by
        # one answer in k sightings: a feature that says nothing adds ~0, so long options are not penalised
        prior = q.num_options - 1
        scores = [
            sum(
                math.log(prior * (answered[f] + 1) / (seen[f] - answered[f] + prior))
                for f in wording_features(q, i)
            )
            for i in range(q.num_options)
        ]
        best = [i for i, score in enumerate(scores) if score >= max(scores) - 1e-9]
        hits[q.category] += (q.answer_index in best) / len(best)
        totals[q.category] += 1
    return hits, totals


def blind_baseline_report(
    questions: Sequence[MCQuestion], sigma: float, fit: Sequence[MCQuestion] | None = None
) -> dict[str, Any]:
    """How well predictors that never see the video answer `questions`, each beside its chance band.

    The answer-agnostic guessers over all questions, and the wording baseline per category, fitted on `fit`
    (a training split) or, without one, two-fold on the questions themselves (fit on one half, score the
    other). `leaks` names every predictor above its band: the words, not the videos, answer those.
    """
    low, high = chance_band(questions, sigma)
    guessers = {
        name: {"accuracy": accuracy, "chance_band": [low, high]}
        for name, accuracy in answer_agnostic_accuracies(questions).items()
    }
    if fit is not None:
        hits, totals = wording_baseline_hits(fit, questions)
    else:
        halves = (questions[0::2], questions[1::2])
        hits, totals = wording_baseline_hits(halves[1], halves[0])
        other_hits, other_totals = wording_baseline_hits(halves[0], halves[1])
        hits, totals = hits + other_hits, totals + other_totals
    wording = {}
    for category in sorted(totals):
        band = chance_band([q for q in questions if q.category == category], sigma)
        wording[category] = {"accuracy": hits[category] / totals[category], "chance_band": list(band)}
    above = {**guessers, **{f"wording:{c}": entry for c, entry in wording.items()}}
    return {
        "num_questions": len(questions),
        "wording_fitted_on": "fit split" if fit is not None else "two-fold",
        "answer_agnostic": guessers,
        "wording_baseline": wording,
        "leaks": [name for name, entry in above.items() if entry["accuracy"] > entry["chance_band"][1]],
    }


def guessing_band(questions: Sequence[MCQuestion], sigma: float) -> tuple[float, float]:
    """The band of `checks` for a benchmark with mixed option counts (exact per-question variance)."""
    return chance_band(questions, sigma)
