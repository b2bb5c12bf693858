"""Short, low-resolution motion clips with direction, order and timestamp questions.

The good clips carry one direction and at most one order question each, and timestamps are only asked
about the two long clips: far too few for a small model to learn time, and too few held-out questions to
tell a learnt skill from chance. Motion clips are cheap (128x96, 4 fps, 8 s), so the corpus can hold
hundreds: every clip has one move and one or two other events at whole seconds at least two seconds apart,
so at 1 fps sampling the frame at each event's second shows it and the frame before does not, and the move
ends by the last sampled second. With `synth.motion_min_move` shapes start at a corner of their range and
the move crosses the range (at 64 px two or three patches, not a few pixels). Distractors are the clip's
other events and its events played backwards, so only the order of the frames tells them apart.
They live in motion/ (never curated: their ground truth is motion_truth.jsonl) and their questions join
questions.jsonl, so the training `qa` source and the `sample:` benchmark read them like any other clip's,
through the same frame sampling, timestamp embedding and patchify code."""

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
MOVE_SECONDS = 2  # a move spans three 1-fps frames: start, halfway, end
EVENT_GAP_SECONDS = 2


def event_seconds(rng: np.random.Generator, duration: int, count: int) -> list[int]:
    """`count` whole seconds in [1, duration - 2], `EVENT_GAP_SECONDS` apart (fewer if they do not fit)."""
    last = duration - 2
    for _ in range(100):
        times = sorted(int(t) for t in rng.choice(np.arange(1, last + 1), size=count, replace=False))
        if all(b - a >= EVENT_GAP_SECONDS for a, b in zip(times, times[1:], strict=False)):
            return times
    return [1, 1 + EVENT_GAP_SECONDS][:count]


def plan_motion_clip(rng: np.random.Generator, index: int, settings: SynthSettings) -> ClipPlan:
    """One or two shapes; one move plus one or two appear/disappear/colour events at whole seconds."""
    plan = ClipPlan(clip_id=f"motion_{index:04d}", index=index, kind="motion", seed=int(rng.integers(2**31)))
    plan.width, plan.height = MOTION_SIZE
    plan.fps = MOTION_FPS
    duration = int(settings.motion_seconds)
    plan.frame_times = cfr_times(MOTION_FPS, duration)
    plan.background = str(rng.choice(list(BACKGROUNDS)))
    plan.radius_fraction = settings.shape_radius_fraction
    for _ in range(100):
        count = int(rng.integers(1, 3))
        long_moves_only = settings.motion_min_move > 0
        # two shapes side by side only have room to move up or down: stack them half the time
        stacked = long_moves_only and count == 2 and bool(rng.random() < 0.5)
        plan.tracks = place_tracks(rng, count, plan.width, plan.height, plan.radius_fraction, True, stacked)
        if long_moves_only:
            plan.tracks = [at_corner(rng, t) for t in plan.tracks]
        times = event_seconds(rng, duration, int(rng.integers(2, 4)))
        plan.events = motion_events(rng, plan, times, settings.motion_min_move)
        moves = [e for e in plan.events if e.type == "move"]
        shown = {e.track for e in plan.events if e.type == "appear"} | {
            i for i, t in enumerate(plan.tracks) if t.visible
        }
        if len(moves) == 1 and len(plan.events) == len(times) and len(shown) == len(plan.tracks):
            return plan
    raise RuntimeError(f"could not plan motion clip {plan.clip_id}")


def at_corner(rng: np.random.Generator, track: Track) -> Track:
    """The track moved to a random corner of its range: every move from there spans the range's full axis."""
    x_min, x_max, y_min, y_max = track.bounds
    x = float(rng.choice([x_min, x_max]))
    y = float(rng.choice([y_min, y_max]))
    return dataclasses.replace(track, x=round(x, 4), y=round(y, 4))


def long_moves(track: Track, x: float, y: float, min_move: float) -> list[tuple[str, float, float]]:
    """`feasible_moves` that cross at least `min_move` of the frame."""
    return [m for m in feasible_moves(track, x, y) if abs(m[1] - x) + abs(m[2] - y) >= min_move]


def motion_events(
    rng: np.random.Generator, plan: ClipPlan, times: list[int], min_move: float = 0.0
) -> list[Event]:
    """Events at `times`: the move at a random one of them, the others appear/disappear/colour changes."""
    # the move ends by the last whole second, so 1 fps sampling shows its start, halfway and end
    whole_moves = [n for n, t in enumerate(times) if t + MOVE_SECONDS <= plan.duration - 1]
    if not whole_moves:
        return []
    move_at = int(rng.choice(whole_moves))
    state = [[t.visible, t.color, t.x, t.y] for t in plan.tracks]
    busy_until = [0.0] * len(plan.tracks)
    used = {t.color for t in plan.tracks}
    events: list[Event] = []
    for n, t in enumerate(times):
        free = [i for i in range(len(plan.tracks)) if busy_until[i] <= t]
        if n == move_at:
            options = [i for i in free if state[i][0] and long_moves(plan.tracks[i], *state[i][2:], min_move)]
            if not options:
                return events
            i = int(rng.choice(options))
            direction, x_end, y_end = rng.permutation(long_moves(plan.tracks[i], *state[i][2:], min_move))[0]
            x_end, y_end = round(float(x_end), 4), round(float(y_end), 4)
            visible, color, x, y = state[i]
            events.append(
                Event(float(t), "move", i, plan.tracks[i].shape, color, x, y, direction=str(direction),
                      end_t=float(t + MOVE_SECONDS), x_end=x_end, y_end=y_end)
            )  # fmt: skip
            state[i][2], state[i][3] = x_end, y_end
            busy_until[i] = t + MOVE_SECONDS + 0.5
            continue
        if not free:
            return events
        i = int(rng.choice(free))
        visible, color, x, y = state[i]
        kinds = (
            ["appear"]
            if not visible
            else ["disappear", "color"]
            if len(used) < len(COLORS)
            else ["disappear"]
        )
        # a shape that is to move later must stay visible
        if visible and n < move_at:
            kinds = [k for k in kinds if k != "disappear"] or kinds
        kind = str(rng.choice(kinds))
        shape = plan.tracks[i].shape
        if kind == "color":
            new_color = str(rng.choice(sorted(set(COLORS) - used)))
            used.add(new_color)
            events.append(Event(float(t), "color", i, shape, color, x, y, new_color=new_color))
            state[i][1] = new_color
        else:
            events.append(Event(float(t), kind, i, shape, color, x, y))
            state[i][0] = kind == "appear"
        busy_until[i] = t + 0.5
    return events


def plausible_fakes(rng: np.random.Generator, plan: ClipPlan, real: set[str], count: int) -> list[str]:
    """Event phrases about the clip's own shapes and colours that do not happen: telling them from the real
    events needs the order or time of what is seen, not only what is seen."""
    candidates = set()
    subjects = {(e.color, e.shape) for e in plan.events} | {(t.color, t.shape) for t in plan.tracks}
    colors = {t.color for t in plan.tracks} | {e.new_color for e in plan.events if e.new_color}
    for color, shape in subjects:
        for direction in DIRECTIONS:
            candidates.add(f"the {color} {shape} moves {direction}")
        for other in colors - {color}:
            candidates.add(f"the {color} {shape} turns {other}")
        candidates |= {f"the {color} {shape} appears", f"the {color} {shape} disappears"}
    pool = sorted(candidates - real)
    return [str(p) for p in rng.choice(pool, size=min(count, len(pool)), replace=False)]


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


def drafts_for_motion_clip(plan: ClipPlan, rng: np.random.Generator, every_timestamp: bool) -> list[Draft]:
    """Direction of the move, which event comes first, and what happens at an event's second (every event's
    for training clips, one per held-out clip so each clip weighs the same in every category)."""
    phrases = [event_phrase(e) for e in plan.events]
    real = set(phrases)
    move = next(e for e in plan.events if e.type == "move")
    drafts = [
        Draft(
            plan,
            "direction",
            f"In which direction does the {move.color} {move.shape} move?",
            str(move.direction),
            [d for d in rng.permutation(list(DIRECTIONS)) if d != move.direction][: NUM_OPTIONS - 1],
        )
    ]

    def options_beside(j: int) -> list[str]:
        """The clip's other events, then the asked event played backwards (then the others backwards): a
        model that sees which events happen but not their order cannot rule any of them out."""
        others = [p for k, p in enumerate(phrases) if k != j]
        backwards = [
            event_phrase(reversed_event(e))
            for e in [plan.events[j], *(e for k, e in enumerate(plan.events) if k != j)]
        ]
        distractors = list(dict.fromkeys(others + [p for p in backwards if p not in real]))[: NUM_OPTIONS - 1]
        return distractors + plausible_fakes(
            rng, plan, real | set(distractors), NUM_OPTIONS - 1 - len(distractors)
        )

    drafts.append(Draft(plan, "order", "Which of these happens first?", phrases[0], options_beside(0)))
    asked = range(len(plan.events)) if every_timestamp else [int(rng.integers(len(plan.events)))]
    for j in asked:
        event = plan.events[j]
        drafts.append(
            Draft(
                plan,
                "timestamp",
                f"What happens at {clock(event.t)}?",
                phrases[j],
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
