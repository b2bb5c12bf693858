"""Multiple-choice questions about good and long clips, answer letters balanced over positions.

Distractors come from the same small vocabulary as the answers (colours, shapes, directions, event phrases of
the same template), so option wording and length give nothing away; only the video does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kangaroo.synth.clip_plan import ClipPlan, Event
from kangaroo.synth.describe import clock, event_phrase
from kangaroo.synth.vocab import COLORS, DIRECTIONS, SHAPES

NUM_OPTIONS = 4
LETTERS = "ABCD"
MAX_TIMESTAMP_QUESTIONS = 12  # per long clip
# the long clips' timestamp probes, apart from the motion clips' 8 s "timestamp" questions
LONG_TIMESTAMP = "long_timestamp"
ANSWERED_KINDS = ("good", "long")


@dataclass
class Draft:
    """A question before its answer is placed: the correct option and three distractors."""

    clip: ClipPlan
    category: str
    question: str
    correct: str
    distractors: list[str]


def pick_others(
    rng: np.random.Generator, pool: list[str], exclude: set[str], count: int = NUM_OPTIONS - 1
) -> list[str]:
    choices = sorted(set(pool) - exclude)
    return [str(c) for c in rng.choice(choices, size=count, replace=False)]


def fake_phrases(rng: np.random.Generator, real: set[str], count: int) -> list[str]:
    """Event phrases of the same template that do not happen in the clip."""
    phrases: list[str] = []
    while len(phrases) < count:
        kind = str(rng.choice(["move", "color", "appear", "disappear"]))
        color, shape = str(rng.choice(list(COLORS))), str(rng.choice(SHAPES))
        others = [c for c in COLORS if c != color]
        event = Event(
            0.0,
            kind,
            0,
            shape,
            color,
            0.0,
            0.0,
            new_color=str(rng.choice(others)),
            direction=str(rng.choice(list(DIRECTIONS))),
        )
        phrase = event_phrase(event)
        if phrase not in real and phrase not in phrases:
            phrases.append(phrase)
    return phrases


def drafts_for_clip(plan: ClipPlan, rng: np.random.Generator) -> list[Draft]:
    drafts = []
    ever_used: dict[str, int] = {}
    for track in plan.tracks:
        ever_used[track.color] = ever_used.get(track.color, 0) + 1
    for event in plan.events:
        if event.type == "color":
            ever_used[event.new_color] = ever_used.get(event.new_color, 0) + 1
    for i, track in enumerate(plan.tracks):
        worn = {track.color} | {e.new_color for e in plan.events if e.type == "color" and e.track == i}
        color = track.color  # hidden tracks only ever appear first, so this is the colour first seen
        drafts.append(
            Draft(
                plan,
                "color",
                f"What colour is the {track.shape} when it first appears?",
                color,
                # Colours the track turns into later make confusing distractors; use them only when a
                # track that changes colour often leaves too few others.
                pick_others(
                    rng, list(COLORS), worn if len(COLORS) - len(worn) >= NUM_OPTIONS - 1 else {color}
                ),
            )
        )
        if ever_used[color] == 1 and not any(e.type == "color" and e.track == i for e in plan.events):
            drafts.append(
                Draft(
                    plan,
                    "shape",
                    f"Which shape is {color}?",
                    track.shape,
                    pick_others(rng, list(SHAPES), {track.shape}),
                )
            )
    for event in plan.events:
        if (
            event.type == "color"
            and sum(e.type == "color" and e.track == event.track for e in plan.events) == 1
        ):
            drafts.append(
                Draft(
                    plan,
                    "color",
                    f"What colour does the {event.shape} turn into?",
                    event.new_color,
                    pick_others(rng, list(COLORS), {event.new_color, event.color}),
                )
            )
        moves = [e for e in plan.events if e.type == "move" and e.track == event.track]
        if event.type == "move" and len(moves) == 1:
            drafts.append(
                Draft(
                    plan,
                    "direction",
                    f"In which direction does the {event.color} {event.shape} move?",
                    event.direction,
                    pick_others(rng, list(DIRECTIONS), {event.direction}),
                )
            )
    count = len(plan.tracks)
    others = [str(n) for n in range(1, NUM_OPTIONS + 1) if n != count]
    drafts.append(
        Draft(plan, "count", "How many different shapes are shown in the video?", str(count), others)
    )
    real = {event_phrase(e) for e in plan.events}
    if len(plan.events) >= 2 and plan.kind == "good":
        shown = sorted(rng.choice(len(plan.events), size=min(NUM_OPTIONS, len(plan.events)), replace=False))
        phrases = [event_phrase(plan.events[j]) for j in shown]
        if len(set(phrases)) == len(phrases):
            fakes = fake_phrases(rng, real, NUM_OPTIONS - len(phrases))
            drafts.append(
                Draft(plan, "order", "Which of these happens first?", phrases[0], phrases[1:] + fakes)
            )
    if plan.kind == "long":
        chosen = rng.choice(
            len(plan.events), size=min(MAX_TIMESTAMP_QUESTIONS, len(plan.events)), replace=False
        )
        for j in sorted(chosen):
            event = plan.events[j]
            phrase = event_phrase(event)
            others = sorted({event_phrase(e) for e in plan.events} - {phrase})
            picked = [
                str(p) for p in rng.choice(others, size=min(len(others), NUM_OPTIONS - 1), replace=False)
            ]
            picked += fake_phrases(rng, real, NUM_OPTIONS - 1 - len(picked))
            drafts.append(Draft(plan, LONG_TIMESTAMP, f"What happens at {clock(event.t)}?", phrase, picked))
    return drafts


def balanced_positions(rng: np.random.Generator, count: int) -> list[int]:
    """Answer positions in shuffled blocks of 0..3, so every letter is the answer equally often."""
    blocks = [rng.permutation(NUM_OPTIONS) for _ in range(count // NUM_OPTIONS + 1)]
    return [int(p) for p in np.concatenate(blocks)[:count]]


def unseen_others(rng: np.random.Generator, pool: list[str], shown: set[str], answer: str) -> list[str]:
    """Distractors the still does not show, unless the vocabulary has too few of those."""
    return pick_others(rng, pool, shown if len(pool) - len(shown) >= NUM_OPTIONS - 1 else {answer})


def shown_others(rng: np.random.Generator, pool: list[str], shown: set[str], answer: str) -> list[str]:
    """Distractors the still shows on its other shapes first, topped up with unseen ones: only binding (which
    shape wears which colour) answers these, as in the clip questions."""
    visible = [str(v) for v in rng.permutation(sorted(shown - {answer}))][: NUM_OPTIONS - 1]
    return visible + pick_others(rng, pool, shown | {answer}, NUM_OPTIONS - 1 - len(visible))


IMAGE_DISTRACTORS = {"unseen": unseen_others, "shown": shown_others}


def drafts_for_image(plan: ClipPlan, rng: np.random.Generator, distractors: str = "unseen") -> list[Draft]:
    """Still-image questions: every shape's colour, every colour's shape, the count.

    `distractors` "unseen": options avoid everything in the image where the vocabulary allows, so an answer
    needs only what is visible; "shown": the image's other colours/shapes come first (binding needed).
    """
    others = IMAGE_DISTRACTORS[distractors]
    colors, shapes = {t.color for t in plan.tracks}, {t.shape for t in plan.tracks}
    drafts = []
    for track in plan.tracks:
        drafts.append(
            Draft(
                plan,
                "color",
                f"What colour is the {track.shape}?",
                track.color,
                others(rng, list(COLORS), colors, track.color),
            )
        )
        drafts.append(
            Draft(
                plan,
                "shape",
                f"Which shape is {track.color}?",
                track.shape,
                others(rng, list(SHAPES), shapes, track.shape),
            )
        )
    count = len(plan.tracks)
    others = [str(n) for n in range(1, NUM_OPTIONS + 1) if n != count]
    drafts.append(Draft(plan, "count", "How many different shapes are shown?", str(count), others))
    return drafts


def place_answers(drafts: list[Draft], rng: np.random.Generator) -> list[tuple[Draft, list[str], str]]:
    """Each draft's options with the correct one inserted at a balanced position, and its letter."""
    positions: dict[str, list[int]] = {}
    for category in sorted({d.category for d in drafts}):
        positions[category] = balanced_positions(rng, sum(d.category == category for d in drafts))
    placed = []
    for draft in drafts:
        position = positions[draft.category].pop()
        options = [str(o) for o in rng.permutation(draft.distractors)]
        options.insert(position, draft.correct)
        placed.append((draft, options, LETTERS[position]))
    return placed


def write_questions(plans: list[ClipPlan], seed: int, motion_drafts: list[Draft] | None = None) -> list[dict]:
    """questions.jsonl rows for every good and long clip, then the motion clips' (kangaroo.synth.motion),
    answers balanced within each group, so adding motion clips leaves the other questions as they were."""
    rng = np.random.default_rng([seed, 5])
    drafts = [d for p in plans if p.kind in ANSWERED_KINDS for d in drafts_for_clip(p, rng)]
    placed = place_answers(drafts, rng)
    if motion_drafts:
        placed += place_answers(motion_drafts, np.random.default_rng([seed, 12]))
    return [
        {
            "question_id": f"q_{number:05d}",
            "clip_id": draft.clip.clip_id,
            "video": f"{'motion' if draft.clip.kind == 'motion' else 'videos'}/{draft.clip.clip_id}.mp4",
            "question": draft.question,
            "options": options,
            "answer": letter,
            "category": draft.category,
            "split": draft.clip.split,
            "start": None,
            "end": None,
        }
        for number, (draft, options, letter) in enumerate(placed)
    ]


def write_image_questions(plans: list[ClipPlan], seed: int, distractors: str = "unseen") -> list[dict]:
    """image_questions.jsonl rows: multiple-choice questions about the stills (see docs/data-formats.md)."""
    rng = np.random.default_rng([seed, 8])
    drafts = [d for p in plans for d in drafts_for_image(p, rng, distractors)]
    return [
        {
            "question_id": f"iq_{number:05d}",
            "image": f"images/{draft.clip.clip_id}.png",
            "question": draft.question,
            "options": options,
            "answer": letter,
            "category": draft.category,
            "split": draft.clip.split,
        }
        for number, (draft, options, letter) in enumerate(place_answers(drafts, rng))
    ]
