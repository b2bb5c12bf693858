"""Deterministic plans of synthetic clips: which shapes, where, and what happens when.

A plan is pure data (no pixels): the renderer draws it, the captioner and question writer describe it, and
the ground truth records it, so all three agree by construction. Every shape lives in its own cell of the
frame (halves or quadrants), so shapes never overlap and the pixel at a shape's centre is the shape's colour.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kangaroo.errors import KangarooError
from kangaroo.synth.settings import SynthSettings
from kangaroo.synth.vocab import BACKGROUNDS, COLORS, DIRECTIONS, SHAPES

TIME_BASE_HZ = 90_000  # PTS clock: fine enough to hold any of our frame rates and VFR intervals exactly
CELL_PADDING = 0.02  # normalised gap between a shape and its cell's border
MIN_MOVE_ROOM = 0.4  # a move needs this share of the cell's free range ahead of the shape

GOOD_SIZES = ((320, 240), (256, 144), (320, 180), (240, 180), (426, 240))
HD_SIZES = ((640, 480), (854, 480), (1280, 720))
GOOD_FPS = (10, 12, 15, 24, 25, 30)
HIGH_FPS = 60
TEXT_LINES = ("SALE 50% OFF", "BUY NOW", "BREAKING NEWS", "SUBSCRIBE", "LIVE TODAY", "FREE SHIPPING")

BAD_KINDS = (
    "text",
    "face",
    "static",
    "short",
    "small",
    "zero_byte",
    "truncated",
    "random_bytes",
    "audio_only",
)
EXPECTED_REASON = {
    "good": None,
    "long": None,
    "text": "text_coverage",
    "face": "face_coverage",
    "static": "static_scene",
    "short": "duration",
    "small": "resolution",
    "zero_byte": "decode_error",
    "truncated": "decode_error",
    "random_bytes": "decode_error",
    "audio_only": "decode_error",
}
NO_VIDEO_KINDS = ("zero_byte", "random_bytes", "audio_only")


class SynthError(KangarooError):
    """The requested corpus cannot be made (too few videos for the planted kinds, unwritable output)."""


@dataclass(frozen=True)
class Track:
    """One shape: its initial colour, centre (normalised x, y), visibility at t=0 and its cell."""

    shape: str
    color: str
    x: float
    y: float
    visible: bool
    bounds: tuple[float, float, float, float]  # x_min, x_max, y_min, y_max of the centre


@dataclass(frozen=True)
class Event:
    """One track's event at time `t`; a move runs from (x, y) at `t` to (x_end, y_end) at `end_t`."""

    t: float
    type: str
    track: int
    shape: str
    color: str
    x: float
    y: float
    new_color: str | None = None
    direction: str | None = None
    end_t: float | None = None
    x_end: float | None = None
    y_end: float | None = None


@dataclass
class ClipPlan:
    """Everything needed to render, describe and judge one file under videos/."""

    clip_id: str
    index: int
    kind: str
    seed: int
    width: int = 0
    height: int = 0
    fps: float = 0.0
    vfr: bool = False
    frame_times: list[float] = field(default_factory=list)
    background: str = "black"
    textured: bool = False
    radius_fraction: float = 0.12
    tracks: list[Track] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    text_lines: tuple[str, ...] = ()
    split: str = "train"

    @property
    def has_video(self) -> bool:
        return self.kind not in NO_VIDEO_KINDS

    @property
    def duration(self) -> float:
        """Presentation length: last frame time plus that frame's display interval."""
        if not self.frame_times:
            return 0.0
        last_interval = (
            self.frame_times[-1] - self.frame_times[-2] if len(self.frame_times) > 1 else 1 / self.fps
        )
        return self.frame_times[-1] + last_interval

    @property
    def mean_fps(self) -> float:
        return self.fps if not self.vfr else len(self.frame_times) / self.duration


def track_state(plan: ClipPlan, track_index: int, t: float) -> tuple[bool, str, float, float]:
    """(visible, colour, x, y) of one track at time t, replaying its events in order."""
    track = plan.tracks[track_index]
    visible, color, x, y = track.visible, track.color, track.x, track.y
    for event in plan.events:
        if event.track != track_index or event.t > t:
            continue
        if event.type == "appear":
            visible = True
        elif event.type == "disappear":
            visible = False
        elif event.type == "color":
            color = event.new_color
        elif event.type == "move":
            progress = min(1.0, (t - event.t) / (event.end_t - event.t))
            x = event.x + progress * (event.x_end - event.x)
            y = event.y + progress * (event.y_end - event.y)
    return visible, color, x, y


def cells(count: int, stacked: bool = False) -> list[tuple[float, float, float, float]]:
    """Non-overlapping cells (x0, x1, y0, y1) for `count` shapes: whole frame, halves (side by side, or one
    above the other if `stacked`) or quadrants."""
    if count == 1:
        return [(0.0, 1.0, 0.0, 1.0)]
    if count == 2:
        return (
            [(0.0, 1.0, 0.0, 0.5), (0.0, 1.0, 0.5, 1.0)]
            if stacked
            else [(0.0, 0.5, 0.0, 1.0), (0.5, 1.0, 0.0, 1.0)]
        )
    return [(0.0, 0.5, 0.0, 0.5), (0.5, 1.0, 0.0, 0.5), (0.0, 0.5, 0.5, 1.0), (0.5, 1.0, 0.5, 1.0)][:count]


def place_tracks(
    rng: np.random.Generator,
    count: int,
    width: int,
    height: int,
    radius_fraction: float,
    allow_hidden: bool,
    stacked: bool = False,
) -> list[Track]:
    """Distinct shapes and colours, one per cell, at a random point of the cell."""
    radius_px = radius_fraction * min(width, height)
    rx, ry = radius_px / width + CELL_PADDING, radius_px / height + CELL_PADDING
    shapes = rng.choice(SHAPES, size=count, replace=False)
    colors = rng.choice(list(COLORS), size=count, replace=False)
    tracks = []
    for i, (x0, x1, y0, y1) in enumerate(cells(count, stacked)):
        bounds = (x0 + rx, max(x0 + rx, x1 - rx), y0 + ry, max(y0 + ry, y1 - ry))
        x = float(rng.uniform(bounds[0], bounds[1]))
        y = float(rng.uniform(bounds[2], bounds[3]))
        visible = not (allow_hidden and i > 0 and rng.random() < 0.25)
        tracks.append(Track(str(shapes[i]), str(colors[i]), round(x, 4), round(y, 4), visible, bounds))
    return tracks


def event_times(rng: np.random.Generator, count: int, start: float, end: float, gap: float) -> list[float]:
    """`count` sorted times in [start, end], at least `gap` apart (fewer if they do not fit)."""
    count = min(count, int((end - start) / gap) + 1) if end > start else min(count, 1)
    if count <= 0:
        return []
    slack = max(0.0, end - start - (count - 1) * gap)
    base = np.sort(rng.uniform(0.0, slack, size=count))
    return [round(float(start + b + i * gap), 2) for i, b in enumerate(base)]


def feasible_moves(track: Track, x: float, y: float) -> list[tuple[str, float, float]]:
    """Directions with room ahead of the shape, each with the target centre at the cell's far side."""
    x_min, x_max, y_min, y_max = track.bounds
    moves = []
    for name, (dx, dy) in DIRECTIONS.items():
        span = (x_max - x_min) if dx else (y_max - y_min)
        target_x = x if not dx else (x_min if dx < 0 else x_max)
        target_y = y if not dy else (y_min if dy < 0 else y_max)
        room = abs(target_x - x) + abs(target_y - y)
        if span > 0 and room >= MIN_MOVE_ROOM * span and room > 0.05:
            moves.append((name, target_x, target_y))
    return moves


def plan_events(
    rng: np.random.Generator, plan: ClipPlan, count: int, settings: SynthSettings, gap: float
) -> list[Event]:
    """Timed events over the clip's tracks, valid for each track's state and never overlapping per track."""
    duration = plan.duration
    start, end = min(0.3, 0.1 * duration), duration - min(0.6, 0.3 * duration)
    times = event_times(rng, count, start, end, gap)
    state = [[t.visible, t.color, t.x, t.y] for t in plan.tracks]
    busy_until = [0.0] * len(plan.tracks)
    used_colors = {t.color for t in plan.tracks}
    events: list[Event] = []
    for t in times:
        candidates = []
        for i, track in enumerate(plan.tracks):
            if busy_until[i] > t:
                continue
            visible, color, x, y = state[i]
            if not visible:
                candidates.append((i, "appear", 3.0))
                continue
            if feasible_moves(track, x, y):
                candidates.append((i, "move", 3.0))
            if len(used_colors) < len(COLORS):
                candidates.append((i, "color", 2.0))
            candidates.append((i, "disappear", 1.0))
        if not candidates:
            continue
        weights = np.array([w for _, _, w in candidates])
        i, kind, _ = candidates[rng.choice(len(candidates), p=weights / weights.sum())]
        track = plan.tracks[i]
        visible, color, x, y = state[i]
        if kind == "appear":
            state[i][0] = True
            events.append(Event(t, "appear", i, track.shape, color, x, y))
        elif kind == "disappear":
            state[i][0] = False
            events.append(Event(t, "disappear", i, track.shape, color, x, y))
        elif kind == "color":
            new_color = str(rng.choice(sorted(set(COLORS) - used_colors)))
            used_colors.add(new_color)
            state[i][1] = new_color
            events.append(Event(t, "color", i, track.shape, color, x, y, new_color=new_color))
        else:
            moves = feasible_moves(track, x, y)
            direction, x_end, y_end = moves[rng.integers(len(moves))]
            end_t = round(min(t + settings.move_seconds, duration - 0.1), 2)
            busy_until[i] = end_t + 0.05
            state[i][2], state[i][3] = round(x_end, 4), round(y_end, 4)
            events.append(
                Event(
                    t,
                    "move",
                    i,
                    track.shape,
                    color,
                    x,
                    y,
                    direction=direction,
                    end_t=end_t,
                    x_end=round(x_end, 4),
                    y_end=round(y_end, 4),
                )
            )
    return events


def cfr_times(fps: float, duration: float) -> list[float]:
    return [round(i / fps * TIME_BASE_HZ) / TIME_BASE_HZ for i in range(max(1, round(duration * fps)))]


def vfr_times(rng: np.random.Generator, fps: float, duration: float) -> list[float]:
    """Runs of frames at `fps` alternating with runs at a third of it, as screen recorders produce."""
    times, t = [], 0.0
    while t < duration - 1e-9:
        interval = (1 / fps) * (1 if rng.random() < 0.6 else 3)
        for _ in range(int(rng.integers(3, 12))):
            if t >= duration - 1e-9:
                break
            times.append(round(t * TIME_BASE_HZ) / TIME_BASE_HZ)
            t += interval
    return times


def shape_clip(
    rng: np.random.Generator,
    plan: ClipPlan,
    settings: SynthSettings,
    size: tuple[int, int],
    fps: float,
    duration: float,
    num_events: int,
    vfr: bool = False,
    need_move: bool = True,
    gap: float | None = None,
) -> ClipPlan:
    """Fill `plan` with tracks, frame times and events; retries until a move happens and every shape shows."""
    plan.width, plan.height = size
    plan.fps, plan.vfr = float(fps), vfr
    plan.frame_times = vfr_times(rng, fps, duration) if vfr else cfr_times(fps, duration)
    plan.background = str(rng.choice(list(BACKGROUNDS)))
    plan.textured = bool(rng.random() < settings.textured_fraction)
    plan.radius_fraction = settings.shape_radius_fraction
    for _ in range(100):
        count = int(rng.integers(1, 5))
        plan.tracks = place_tracks(rng, count, plan.width, plan.height, plan.radius_fraction, num_events > 1)
        event_gap = gap or settings.min_event_gap_seconds
        plan.events = plan_events(rng, plan, num_events, settings, event_gap) if num_events else []
        shown = {e.track for e in plan.events if e.type == "appear"} | {
            i for i, t in enumerate(plan.tracks) if t.visible
        }
        has_move = any(e.type == "move" for e in plan.events)
        if len(shown) == len(plan.tracks) and (has_move or not need_move):
            return plan
    raise RuntimeError(f"could not plan clip {plan.clip_id} (seed {plan.seed})")


def clip_kinds(settings: SynthSettings, num_videos: int) -> list[str]:
    """Kinds of all clips, in the shuffled order that becomes clip_0000, clip_0001, ..."""
    minimum = 2 if num_videos >= 40 else 1
    per_bad = max(minimum, round(settings.bad_fraction_per_kind * num_videos))
    kinds = [k for k in BAD_KINDS for _ in range(per_bad)]
    kinds += ["long"] * settings.num_long_videos
    if len(kinds) > num_videos:
        raise SynthError(
            f"synth.num_videos={num_videos} is too small: {len(kinds)} planted-bad and long clips are needed"
        )
    kinds += ["good"] * (num_videos - len(kinds))
    order = np.random.default_rng([settings.seed, 1]).permutation(len(kinds))
    return [kinds[i] for i in order]


def special_indices(rng: np.random.Generator, good: list[int], fraction: float) -> set[int]:
    """A handful (at least one) of good clips that get a special property (HD, 60 fps, VFR)."""
    count = max(1, round(fraction * len(good))) if good else 0
    return {int(i) for i in rng.choice(good, size=min(count, len(good)), replace=False)}


def plan_corpus(settings: SynthSettings) -> list[ClipPlan]:
    """Plans for every file under videos/, deterministic from settings.seed and settings.num_videos."""
    kinds = clip_kinds(settings, settings.num_videos)
    good = [i for i, k in enumerate(kinds) if k == "good"]
    pick = np.random.default_rng([settings.seed, 2])
    hd = special_indices(pick, good, settings.hd_fraction)
    high_fps = special_indices(pick, [i for i in good if i not in hd], settings.high_fps_fraction)
    vfr = special_indices(pick, [i for i in good if i not in hd], settings.vfr_fraction)
    plans = []
    for index, kind in enumerate(kinds):
        rng = np.random.default_rng([settings.seed, 3, index])
        plan = ClipPlan(clip_id=f"clip_{index:04d}", index=index, kind=kind, seed=int(rng.integers(2**31)))
        plans.append(plan_clip(rng, plan, settings, index in hd, index in high_fps, index in vfr))
    assign_splits(plans, settings)
    return plans


def plan_clip(
    rng: np.random.Generator, plan: ClipPlan, settings: SynthSettings, hd: bool, high_fps: bool, vfr: bool
) -> ClipPlan:
    kind = plan.kind
    small_size = GOOD_SIZES[int(rng.integers(len(GOOD_SIZES)))]
    fps = float(rng.choice(GOOD_FPS))
    if kind == "good":
        size = HD_SIZES[int(rng.integers(len(HD_SIZES)))] if hd else small_size
        duration = float(rng.uniform(settings.good_min_seconds, settings.good_max_seconds))
        if hd:
            duration = min(duration, settings.hd_max_seconds)
        fps = HIGH_FPS if high_fps else (max(fps, 24.0) if vfr else fps)
        return shape_clip(
            rng, plan, settings, size, fps, round(duration, 2), int(rng.integers(1, 5)), vfr=vfr
        )
    if kind == "long":
        duration = settings.long_video_seconds
        num_events = max(4, round(duration / settings.long_event_interval_seconds))
        # Events half the mean interval apart or more: no two share an mm:ss for "what happens at" questions.
        gap = max(settings.min_event_gap_seconds, settings.long_event_interval_seconds / 2)
        return shape_clip(rng, plan, settings, (320, 240), 10.0, duration, num_events, gap=gap)
    if kind in ("text", "truncated"):
        plan = shape_clip(rng, plan, settings, (320, 240), 15.0, round(float(rng.uniform(3, 6)), 2), 2)
        if kind == "text":
            plan.text_lines = tuple(str(s) for s in rng.choice(TEXT_LINES, size=2, replace=False))
        return plan
    if kind == "static":
        return shape_clip(
            rng, plan, settings, small_size, fps, round(float(rng.uniform(3, 6)), 2), 0, need_move=False
        )
    if kind == "short":
        return shape_clip(rng, plan, settings, (320, 240), 15.0, settings.short_seconds, 1)
    if kind == "small":
        return shape_clip(rng, plan, settings, (64, 48), 15.0, 3.0, 2)
    if kind == "face":
        plan.width, plan.height, plan.fps = 320, 240, 15.0
        plan.frame_times = cfr_times(plan.fps, 3.0)
        return plan
    return plan  # zero_byte, random_bytes, audio_only: no pictures to plan


def assign_splits(plans: list[ClipPlan], settings: SynthSettings) -> None:
    """round(eval_fraction * n) clips of each kind go to eval, chosen by a seeded shuffle; a kind with two or
    more clips keeps at least one on each side (the long-video probes need a held-out long clip)."""
    rng = np.random.default_rng([settings.seed, 4])
    for kind in sorted({p.kind for p in plans}):
        members = [p for p in plans if p.kind == kind]
        num_eval = round(settings.eval_fraction * len(members))
        if len(members) >= 2 and settings.eval_fraction > 0:
            num_eval = min(max(num_eval, 1), len(members) - 1)
        for rank, i in enumerate(rng.permutation(len(members))):
            members[i].split = "eval" if rank < num_eval else "train"
