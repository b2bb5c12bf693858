"""`write_corpus`: render every planned clip in parallel and write the ground truth next to it."""

from __future__ import annotations

import json
import logging
import multiprocessing
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from kangaroo.synth.clip_plan import EXPECTED_REASON, ClipPlan, Event, SynthError, plan_corpus
from kangaroo.synth.describe import reference_caption, source_caption
from kangaroo.synth.encode import write_clip
from kangaroo.synth.images import write_images
from kangaroo.synth.motion import motion_question_drafts, motion_truth_row, plan_motion_clips
from kangaroo.synth.questions import write_questions
from kangaroo.synth.render import text_fraction
from kangaroo.synth.settings import SynthSettings

log = logging.getLogger(__name__)


def event_row(event: Event) -> dict:
    row = {
        "t": event.t,
        "type": event.type,
        "shape": event.shape,
        "color": event.color,
        "x": event.x,
        "y": event.y,
    }
    if event.new_color is not None and event.type == "color":
        row["new_color"] = event.new_color
    if event.type == "move":
        row.update(direction=event.direction, end_t=event.end_t, x_end=event.x_end, y_end=event.y_end)
    return row


def ground_truth_row(plan: ClipPlan, size_bytes: int, seed: int) -> dict:
    """A ground_truth.jsonl row (docs/data-formats.md) plus extras: positions, text fraction, frame count."""
    decodable = plan.has_video and plan.kind != "truncated"
    reason = EXPECTED_REASON[plan.kind]
    rng = np.random.default_rng([seed, 8, plan.index])
    row = {
        "clip_id": plan.clip_id,
        "video": f"videos/{plan.clip_id}.mp4",
        "kind": plan.kind,
        "expected_status": "kept" if reason is None else "rejected",
        "expected_reason": reason,
        "duration": round(plan.duration, 6) if decodable else None,
        "fps": round(plan.mean_fps, 6) if decodable else None,
        "vfr": plan.vfr,
        "width": plan.width if decodable else None,
        "height": plan.height if decodable else None,
        "split": plan.split,
        "source_caption": source_caption(plan, rng),
        "reference_caption": reference_caption(plan),
        "shapes": [
            {"shape": t.shape, "color": t.color, "x": t.x, "y": t.y, "visible": t.visible}
            for t in plan.tracks
        ],
        "events": [event_row(e) for e in plan.events],
        "num_frames": len(plan.frame_times) if decodable else None,
        "background": plan.background if plan.tracks else None,
        "textured": plan.textured,
        "radius_fraction": plan.radius_fraction,
        "bytes": size_bytes,
    }
    if plan.text_lines:
        row["text"] = " ".join(plan.text_lines)
        row["text_fraction"] = round(text_fraction(plan.text_lines, plan.width, plan.height), 4)
    return row


def _render(job: tuple[ClipPlan, str, str]) -> tuple[int, int]:
    plan, videos_dir, preset = job
    return plan.index, write_clip(plan, Path(videos_dir) / f"{plan.clip_id}.mp4", preset)


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    with path.open("w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")


def render_all(plans: list[ClipPlan], videos: Path, settings: SynthSettings) -> dict[int, int]:
    """Write every clip, longest first so the pool ends together; returns bytes per clip index."""
    jobs = sorted(plans, key=lambda p: -len(p.frame_times) * p.width * p.height)
    jobs = [(p, str(videos), settings.x264_preset) for p in jobs]
    sizes: dict[int, int] = {}
    progress = tqdm(total=len(jobs), desc="synth clips", unit="clip")
    if settings.workers <= 1:
        for job in jobs:
            index, size = _render(job)
            sizes[index] = size
            progress.update()
    else:
        with multiprocessing.get_context("fork").Pool(settings.workers) as pool:
            for index, size in pool.imap_unordered(_render, jobs):
                sizes[index] = size
                progress.update()
    progress.close()
    return sizes


def write_corpus(out: str | Path, settings: SynthSettings) -> dict:
    """Write the whole sample corpus under `out` (layout in docs/data-formats.md); returns a summary."""
    out = Path(out)
    started = time.monotonic()
    videos = out / "videos"
    try:
        videos.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SynthError(f"cannot create output folder {videos}: {err}") from err
    plans = plan_corpus(settings)
    wanted = {f"{p.clip_id}.mp4" for p in plans}
    for stale in videos.glob("clip_*.mp4"):  # a smaller re-run must not leave rows-less files behind
        if stale.name not in wanted:
            stale.unlink()
    sizes = render_all(plans, videos, settings)
    megabytes = sum(sizes.values()) / 1e6
    truth = [ground_truth_row(p, sizes[p.index], settings.seed) for p in plans]
    write_jsonl(out / "ground_truth.jsonl", truth)
    motion_plans = plan_motion_clips(settings)
    if motion_plans:
        (out / "motion").mkdir(exist_ok=True)
        motion_sizes = render_all(motion_plans, out / "motion", settings)
        write_jsonl(out / "motion_truth.jsonl", (motion_truth_row(p) for p in motion_plans))
        megabytes += sum(motion_sizes.values()) / 1e6
    questions = write_questions(plans, settings.seed, motion_question_drafts(motion_plans, settings.seed))
    write_jsonl(out / "questions.jsonl", questions)
    images, image_questions = write_images(out, settings)
    write_jsonl(out / "images.jsonl", images)
    write_jsonl(out / "image_questions.jsonl", image_questions)
    summary = {
        "clips": len(plans),
        "motion_clips": len(motion_plans),
        "kinds": dict(Counter(p.kind for p in plans)),
        "questions": dict(Counter(q["category"] for q in questions)),
        "images": len(images),
        "image_questions": len(image_questions),
        "seconds": round(time.monotonic() - started, 1),
        "megabytes": round(megabytes, 1),
    }
    log.info(
        "wrote %d clips (%s), %d questions (%s), %d images to %s in %.1f s (%.1f MB)",
        summary["clips"],
        summary["kinds"],
        len(questions),
        summary["questions"],
        summary["images"],
        out,
        summary["seconds"],
        summary["megabytes"],
    )
    return summary
