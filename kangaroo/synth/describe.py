"""Words for plans: event phrases, precise reference captions and noisy alt-text source captions."""

from __future__ import annotations

import numpy as np

from kangaroo.synth.clip_plan import ClipPlan, Event
from kangaroo.synth.vocab import NUMBER_WORDS

HASHTAGS = ("#shapes", "#animation", "#motion", "#colors", "#stockvideo", "#4k", "#loop", "#geometry")
ALT_PREFIXES = ("", "video of ", "stock footage: ", "animation - ", "clip: ", "")
ALT_SUFFIXES = ("", " HD", " | free download", " (no sound)", " 1080p", "")


def event_phrase(event: Event, with_color: bool = True) -> str:
    """'the red circle moves left', 'the blue square turns green', 'the star appears' ... (without the
    subject's colour: 'the circle moves left')."""
    subject = f"the {event.color} {event.shape}" if with_color else f"the {event.shape}"
    if event.type == "move":
        return f"{subject} moves {event.direction}"
    if event.type == "color":
        return f"{subject} turns {event.new_color}"
    return f"{subject} {event.type}s"


def clock(t: float) -> str:
    """Seconds as mm:ss, the way people ask about a moment of a long video."""
    return f"{int(t) // 60:02d}:{int(t) % 60:02d}"


def seconds(t: float) -> str:
    """0.84 -> '0.84', 2.5 -> '2.5', 3.0 -> '3'."""
    return f"{t:.2f}".rstrip("0").rstrip(".")


def indefinite(noun_phrase: str) -> str:
    """'red circle' -> 'a red circle', 'orange star' -> 'an orange star'."""
    return f"{'an' if noun_phrase[0] in 'aeiou' else 'a'} {noun_phrase}"


def shape_list(plan: ClipPlan) -> str:
    names = [indefinite(f"{t.color} {t.shape}") for t in plan.tracks]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def reference_caption(plan: ClipPlan) -> str:
    """Precise description: each shape with its first colour, the background, and each event with its time."""
    if plan.kind == "face":
        return "A close-up of a smiling woman's face in front of a flag; the camera drifts slowly."
    if not plan.tracks:
        return ""
    count = NUMBER_WORDS[len(plan.tracks) - 1]
    noun = "shape" if len(plan.tracks) == 1 else "shapes"
    texture = "textured " if plan.textured else ""
    sentences = [
        f"{count.capitalize()} {noun} on a {texture}{plan.background} background: {shape_list(plan)}."
    ]
    hidden = [t for t in plan.tracks if not t.visible]
    if hidden:
        sentences.append(" ".join(f"The {t.color} {t.shape} is hidden at first." for t in hidden))
    for event in plan.events:
        sentences.append(f"At {seconds(event.t)} s {event_phrase(event)}.")
    if not plan.events:
        sentences.append("Nothing moves.")
    if plan.text_lines:
        sentences.append(f"Large white text reads '{' '.join(plan.text_lines)}'.")
    return " ".join(sentences)


def source_caption(plan: ClipPlan, rng: np.random.Generator) -> str:
    """Alt-text style: the shapes and colours are there, but with casing noise, filler and hashtags."""
    if plan.kind == "face":
        core = "portrait of a woman astronaut smiling"
    elif not plan.tracks:
        return str(rng.choice(["untitled video", "video.mp4", "my upload"]))
    else:
        core = " and ".join(f"{t.color} {t.shape}" for t in plan.tracks)
        moves = [e for e in plan.events if e.type == "move"]
        if moves and rng.random() < 0.5:
            core += f" moving {moves[0].direction}"
    if plan.text_lines:
        core += f" with text {plan.text_lines[0].lower()}"
    if rng.random() < 0.3:
        core = core.upper()
    elif rng.random() < 0.5:
        core = core.capitalize()
    tags = " ".join(rng.choice(HASHTAGS, size=int(rng.integers(0, 4)), replace=False))
    text = f"{rng.choice(ALT_PREFIXES)}{core}{rng.choice(ALT_SUFFIXES)} {tags}"
    return " ".join(text.split())
