"""Short, low-resolution motion clips with direction, order and timestamp questions.

The good clips carry one direction and at most one order question each, and timestamps are only asked
about the two long clips: far too few for a small model to learn time, and too few held-out questions to
tell a learnt skill from chance. Motion clips are cheap (128x96, 4 fps, 8 s), so the corpus can hold
hundreds. Each has one move and one or two instant events (appear, disappear, colour change), each at its
own whole second, at least two seconds apart: at 1 fps sampling the frame at an event's second is the
first to show its outcome, and the frame before it is the last to show the state before. With
`synth.motion_min_move` shapes start at a corner of their range and the move crosses the range (at 64 px two
or three patches, not a few pixels). They live in motion/ (never curated: their ground truth is
motion_truth.jsonl) and their questions join questions.jsonl, so the training `qa` source and the `sample:`
benchmark read them like any other clip's, through the same frame sampling, timestamp embedding and
patchify code.

Only the frames may answer the order and timestamp questions, never the words (docs/training.md E54-E55):
- each question's options are two of the clip's events and those two played backwards, so every option is
  one of two pairs and a model that sees which things happen but not in what order cannot pick within a
  pair;
- the clips are as likely as their time-reversed selves: the events' seconds are uniform over 1..N-1 (the
  reversal maps second t to N - t), which event goes where is random, a shape that may appear is as likely
  to start visible and disappear, and only the other shape appears or disappears, since the mover must be
  seen to move (otherwise "appears" would come before "moves" by construction);
- the options name shapes without colours (shapes are distinct within a clip), so a colour named in one
  option cannot date a colour change named in another.
`tests/test_check_benchmark.py` fits a frame-less predictor on the training questions and checks it stays at
chance on the held-out ones (`kangaroo check-benchmark` runs it on any benchmark)."""

from __future__ import annotations

import dataclasses

import numpy as np

from kangaroo.synth.clip_plan import ClipPlan, Event, Track, cfr_times, feasible_moves, place_tracks
from kangaroo.synth.describe import clock, event_phrase
from kangaroo.synth.questions import NUM_OPTIONS, Draft
from kangaroo.synth.settings import SynthSettings
from kangaroo.synth.vocab import BACKGROUNDS, COLORS, DIRECTIONS

MOTION_SIZE = (128, 96)  # 4:3 like most good clips, so shapes reach the model at the size stills do
MOTION_FPS = 4.0
# one second, like an instant event: the frame before the move's second shows the start, the frame at it the
# end, so played backwards a move is again a one-second move (a longer move would not map onto the seconds)
MOVE_SECONDS = 1
EVENT_GAP_SECONDS = 2
INSTANT_KINDS = ("appear", "disappear", "color")


def event_second(event: Event) -> int:
    """The whole second whose frame first shows the event's outcome: a move's end, any other event's time."""
    return int(event.end_t if event.type == "move" else event.t)


def event_seconds(rng: np.random.Generator, duration: int, count: int) -> list[int]:
    """`count` whole seconds in [1, duration - 1], `EVENT_GAP_SECONDS` apart, uniform over such sets (so as
    likely as their mirror images t -> duration - t)."""
    for _ in range(1000):
        times = sorted(int(t) for t in rng.choice(np.arange(1, duration), size=count, replace=False))
        if all(b - a >= EVENT_GAP_SECONDS for a, b in zip(times, times[1:], strict=False)):
            return times
    raise RuntimeError(f"{count} events {EVENT_GAP_SECONDS} s apart do not fit in {duration} s")


def plan_motion_clip(rng: np.random.Generator, index: int, settings: SynthSettings) -> ClipPlan:
    """One or two shapes: one of them moves; one or two appear/disappear/colour events, at most one each."""
    plan = ClipPlan(clip_id=f"motion_{index:04d}", index=index, kind="motion", seed=int(rng.integers(2**31)))
    plan.width, plan.height = MOTION_SIZE
    plan.fps = MOTION_FPS
    duration = int(settings.motion_seconds)
    plan.frame_times = cfr_times(MOTION_FPS, duration)
    plan.background = str(rng.choice(list(BACKGROUNDS)))
    plan.radius_fraction = settings.shape_radius_fraction
    min_move = settings.motion_min_move
    for _ in range(100):
        count = int(rng.integers(1, 3))
        # two shapes side by side only have room to move up or down: stack them half the time
        stacked = min_move > 0 and count == 2 and bool(rng.random() < 0.5)
        tracks = place_tracks(rng, count, plan.width, plan.height, plan.radius_fraction, False, stacked)
        if min_move > 0:
            tracks = [at_corner(rng, t) for t in tracks]
        movers = [i for i, t in enumerate(tracks) if long_moves(t, t.x, t.y, min_move)]
        if not movers:
            continue
        mover = int(rng.choice(movers))
        # the mover's own instant event (a colour change, so it is seen to move) is optional with a second
        # shape and needed without one: every clip has two or three events
        roles = [("move", mover)] + [("color", mover)] * (count == 1 or bool(rng.random() < 0.5))
        roles += [("instant", i) for i in range(count) if i != mover]
        seconds = event_seconds(rng, duration, len(roles))
        plan.tracks, plan.events = motion_events(
            rng, tracks, rng.permutation(len(roles)), roles, seconds, min_move
        )
        return plan
    raise RuntimeError(f"could not plan motion clip {plan.clip_id}")


def motion_events(
    rng: np.random.Generator,
    tracks: list[Track],
    order: np.ndarray,
    roles: list[tuple[str, int]],
    seconds: list[int],
    min_move: float,
) -> tuple[list[Track], list[Event]]:
    """The tracks (visible at the start unless they are to appear) and the events: role `order[n]` at
    `seconds[n]`. An `instant` role is an appear, disappear or colour change with equal odds."""
    used = {t.color for t in tracks}
    state = [[t.color, t.x, t.y] for t in tracks]  # colour and centre as the events so far left them
    events = []
    for n, t in enumerate(seconds):
        role, i = roles[int(order[n])]
        color, x, y = state[i]
        shape = tracks[i].shape
        if role == "move":
            direction, x_end, y_end = rng.permutation(long_moves(tracks[i], x, y, min_move))[0]
            x_end, y_end = round(float(x_end), 4), round(float(y_end), 4)
            events.append(
                Event(float(t - MOVE_SECONDS), "move", i, shape, color, x, y, direction=str(direction),
                      end_t=float(t), x_end=x_end, y_end=y_end)
            )  # fmt: skip
            state[i][1:] = [x_end, y_end]
            continue
        kind = role if role == "color" else str(rng.choice(INSTANT_KINDS))
        if kind == "color":
            new_color = str(rng.choice(sorted(set(COLORS) - used)))
            used.add(new_color)
            events.append(Event(float(t), "color", i, shape, color, x, y, new_color=new_color))
            state[i][0] = new_color
        else:
            tracks[i] = dataclasses.replace(tracks[i], visible=kind == "disappear")
            events.append(Event(float(t), kind, i, shape, color, x, y))
    return tracks, events


def at_corner(rng: np.random.Generator, track: Track) -> Track:
    """The track moved to a random corner of its range: every move from there spans the range's full axis."""
    x_min, x_max, y_min, y_max = track.bounds
    x = float(rng.choice([x_min, x_max]))
    y = float(rng.choice([y_min, y_max]))
    return dataclasses.replace(track, x=round(x, 4), y=round(y, 4))


def long_moves(track: Track, x: float, y: float, min_move: float) -> list[tuple[str, float, float]]:
    """`feasible_moves` that cross at least `min_move` of the frame."""
    return [m for m in feasible_moves(track, x, y) if abs(m[1] - x) + abs(m[2] - y) >= min_move]


# "left" -> "right" ...: the direction whose step is the negated one
OPPOSITE = {
    name: next(n for n, v in DIRECTIONS.items() if v == (-dx, -dy)) for name, (dx, dy) in DIRECTIONS.items()
}


def reversed_event(event: Event) -> Event:
    """What the event looks like with the clip played backwards: a move the other way, the colour change
    undone, appearing for disappearing. Without the order of the frames it is as plausible as the event."""
    if event.type == "move":
        return dataclasses.replace(event, direction=OPPOSITE[str(event.direction)])
    if event.type == "color":
        return dataclasses.replace(event, color=event.new_color, new_color=event.color)
    return dataclasses.replace(event, type="disappear" if event.type == "appear" else "appear")


def motion_phrase(event: Event) -> str:
    """'the circle moves left', 'the square turns green', 'the star appears': the shape without its colour
    (shapes are distinct within a clip), so no option's colour dates another option's colour change."""
    return event_phrase(event, with_color=False)


def drafts_for_motion_clip(plan: ClipPlan, rng: np.random.Generator, every_timestamp: bool) -> list[Draft]:
    """Direction of the move, which event comes first, and what happens at an event's second (every event's
    for training clips, one per held-out clip so each clip weighs the same in every category)."""
    move = next(e for e in plan.events if e.type == "move")
    drafts = [
        Draft(
            plan,
            "direction",
            f"In which direction does the {move.shape} move?",
            str(move.direction),
            [d for d in rng.permutation(list(DIRECTIONS)) if d != move.direction][: NUM_OPTIONS - 1],
        )
    ]

    def options_beside(j: int) -> list[str]:
        """The asked event played backwards, another event of the clip and that one played backwards."""
        other = plan.events[int(rng.choice([k for k in range(len(plan.events)) if k != j]))]
        return [
            motion_phrase(reversed_event(plan.events[j])),
            motion_phrase(other),
            motion_phrase(reversed_event(other)),
        ]

    first = min(range(len(plan.events)), key=lambda k: event_second(plan.events[k]))
    drafts.append(
        Draft(
            plan,
            "order",
            "Which of these happens first?",
            motion_phrase(plan.events[first]),
            options_beside(first),
        )
    )
    asked = range(len(plan.events)) if every_timestamp else [int(rng.integers(len(plan.events)))]
    for j in asked:
        event = plan.events[j]
        drafts.append(
            Draft(
                plan,
                "timestamp",
                f"What happens at {clock(event_second(event))}?",
                motion_phrase(event),
                options_beside(j),
            )
        )
    return drafts


def plan_motion_clips(settings: SynthSettings) -> list[ClipPlan]:
    """`settings.num_motion_clips` plans; the first `motion_eval_fraction` of a seeded permutation is held
    out."""
    plans = [
        plan_motion_clip(np.random.default_rng([settings.seed, 9, index]), index, settings)
        for index in range(settings.num_motion_clips)
    ]
    order = np.random.default_rng([settings.seed, 10]).permutation(len(plans))
    for rank, i in enumerate(order):
        plans[i].split = "eval" if rank < round(settings.motion_eval_fraction * len(plans)) else "train"
    return plans


def motion_question_drafts(plans: list[ClipPlan], seed: int) -> list[Draft]:
    """Every motion clip's drafts, in plan order, from one seeded generator."""
    rng = np.random.default_rng([seed, 11])
    return [d for p in plans for d in drafts_for_motion_clip(p, rng, every_timestamp=p.split == "train")]


def motion_truth_row(plan: ClipPlan) -> dict:
    from kangaroo.synth.corpus import event_row

    return {
        "clip_id": plan.clip_id,
        "video": f"motion/{plan.clip_id}.mp4",
        "kind": plan.kind,
        "split": plan.split,
        "duration": plan.duration,
        "width": plan.width,
        "height": plan.height,
        "fps": plan.fps,
        "shapes": [
            {"shape": t.shape, "color": t.color, "x": t.x, "y": t.y, "visible": t.visible}
            for t in plan.tracks
        ],
        "events": [event_row(e) for e in plan.events],
    }
