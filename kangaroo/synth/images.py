"""Still images with captions for image-text pre-training (curriculum stage 1)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from kangaroo.synth.clip_plan import GOOD_SIZES, ClipPlan, place_tracks
from kangaroo.synth.describe import shape_list
from kangaroo.synth.questions import write_image_questions
from kangaroo.synth.render import background, draw_shape
from kangaroo.synth.settings import SynthSettings
from kangaroo.synth.vocab import BACKGROUNDS


def shape_count(rng: np.random.Generator, weights: list[float]) -> int:
    """1..len(weights) shapes, drawn with the given relative weights."""
    probabilities = np.asarray(weights, dtype=float) / sum(weights)
    return int(rng.choice(len(weights), p=probabilities)) + 1


def write_images(out: Path, settings: SynthSettings) -> tuple[list[dict], list[dict]]:
    """PNG stills of 1-4 shapes under out/images/; their images.jsonl and image_questions.jsonl rows."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows, plans = [], []
    split_rng = np.random.default_rng([settings.seed, 6])
    eval_ids = set(
        split_rng.permutation(settings.num_images)[: round(settings.eval_fraction * settings.num_images)]
    )
    for index in range(settings.num_images):
        rng = np.random.default_rng([settings.seed, 7, index])
        # framed like the good clips, so shapes in stills and video frames look the same size to the model
        width, height = GOOD_SIZES[int(rng.integers(len(GOOD_SIZES)))]
        plan = ClipPlan(
            clip_id=f"image_{index:04d}",
            index=index,
            kind="image",
            seed=int(rng.integers(2**31)),
            split="eval" if index in eval_ids else "train",
        )
        plan.width, plan.height = width, height
        plan.background = str(rng.choice(list(BACKGROUNDS)))
        plan.tracks = place_tracks(
            rng,
            shape_count(rng, settings.image_shape_weights),
            width,
            height,
            settings.shape_radius_fraction,
            False,
        )
        image = background(plan)
        for track in plan.tracks:
            draw_shape(
                image,
                track.shape,
                track.color,
                track.x,
                track.y,
                settings.shape_radius_fraction * min(width, height),
            )
        name = f"images/{plan.clip_id}.png"
        cv2.imwrite(str(out / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        caption = f"{shape_list(plan).capitalize()} on a {plan.background} background."
        rows.append(
            {
                "image": name,
                "caption": caption,
                "split": plan.split,
                "shapes": [{"shape": t.shape, "color": t.color, "x": t.x, "y": t.y} for t in plan.tracks],
            }
        )
        plans.append(plan)
    return rows, write_image_questions(plans, settings.seed, settings.image_distractors)
