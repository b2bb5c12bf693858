"""Draw a clip plan's frames (RGB uint8 arrays) with OpenCV."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import cv2
import numpy as np

from kangaroo.synth.clip_plan import ClipPlan, track_state
from kangaroo.synth.vocab import BACKGROUNDS, COLORS

TEXT_FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT_WIDTH_SHARE = 0.92  # each text line spans this share of the frame width
TEXTURE_AMPLITUDE = (
    10  # +- grey levels of the static background texture: visible yet far from any shape colour
)
FACE_BOX = (177, 66, 95, 95)  # x, y, w, h of the face in skimage.data.astronaut() (OpenCV's Haar cascade)


def polygon(shape: str, cx: float, cy: float, r: float) -> np.ndarray | None:
    """Vertices of a polygonal shape centred at (cx, cy) with outer radius r; None for a circle."""
    if shape == "square":
        s = 0.85 * r
        points = [(cx - s, cy - s), (cx + s, cy - s), (cx + s, cy + s), (cx - s, cy + s)]
    elif shape == "triangle":
        points = [(cx, cy - r), (cx + 0.95 * r, cy + 0.8 * r), (cx - 0.95 * r, cy + 0.8 * r)]
    elif shape == "diamond":
        points = [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    elif shape == "star":
        angles = -np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, r, 0.45 * r)
        points = list(zip(cx + radii * np.cos(angles), cy + radii * np.sin(angles), strict=True))
    else:
        return None
    return np.round(np.array(points)).astype(np.int32)


def draw_shape(image: np.ndarray, shape: str, color: str, x: float, y: float, radius_px: float) -> None:
    """Fill one shape in place; (x, y) is the normalised centre."""
    h, w = image.shape[:2]
    cx, cy = x * w, y * h
    rgb = COLORS[color]
    points = polygon(shape, cx, cy, radius_px)
    if points is None:
        cv2.circle(image, (round(cx), round(cy)), round(radius_px), rgb, -1, lineType=cv2.LINE_AA)
    else:
        cv2.fillPoly(image, [points], rgb, lineType=cv2.LINE_AA)


def background(plan: ClipPlan) -> np.ndarray:
    image = np.empty((plan.height, plan.width, 3), np.uint8)
    image[:] = BACKGROUNDS[plan.background]
    if plan.textured:
        noise = np.random.default_rng(plan.seed).integers(
            -TEXTURE_AMPLITUDE, TEXTURE_AMPLITUDE + 1, (plan.height // 4 + 1, plan.width // 4 + 1, 1)
        )
        noise = np.repeat(np.repeat(noise, 4, axis=0), 4, axis=1)[: plan.height, : plan.width]
        image = np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return image


def text_layout(
    lines: tuple[str, ...], width: int, height: int
) -> list[tuple[str, float, int, tuple[int, int, int, int]]]:
    """(text, scale, thickness, box x, y, w, h) per line: lines fill the width, stacked around the centre."""
    layout = []
    for i, text in enumerate(lines):
        (base_w, _), _ = cv2.getTextSize(text, TEXT_FONT, 1.0, 2)
        scale = TEXT_WIDTH_SHARE * width / base_w
        thickness = max(2, round(2 * scale))
        (tw, th), baseline = cv2.getTextSize(text, TEXT_FONT, scale, thickness)
        x = (width - tw) // 2
        y_centre = height * (i + 1) / (len(lines) + 1)
        top = round(y_centre - (th + baseline) / 2)
        layout.append((text, scale, thickness, (x, top, tw, th + baseline)))
    return layout


def text_fraction(lines: tuple[str, ...], width: int, height: int) -> float:
    """Share of the frame covered by the text lines' bounding boxes."""
    area = sum(w * h for *_, (_, _, w, h) in text_layout(lines, width, height))
    return area / (width * height)


def draw_text(image: np.ndarray, lines: tuple[str, ...]) -> None:
    """Big white text with a black outline: what a burned-in caption or an ad banner looks like."""
    h, w = image.shape[:2]
    for text, scale, thickness, (x, top, _, box_h) in text_layout(lines, w, h):
        origin = (x, top + box_h - round(0.3 * box_h))
        cv2.putText(image, text, origin, TEXT_FONT, scale, (0, 0, 0), thickness + 4, cv2.LINE_AA)
        cv2.putText(image, text, origin, TEXT_FONT, scale, (255, 255, 255), thickness, cv2.LINE_AA)


@cache
def astronaut() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


def face_frame(width: int, height: int, t: float) -> np.ndarray:
    """The astronaut's face filling the frame, with a slow pan and zoom so the clip is not static."""
    fx, fy, fw, fh = FACE_BOX
    crop_h = 1.15 * fh * (1 + 0.05 * np.sin(2 * np.pi * 0.3 * t))
    crop_w = crop_h * width / height
    cx = fx + fw / 2 + 6 * np.sin(2 * np.pi * 0.4 * t)
    cy = fy + fh / 2 + 4 * np.cos(2 * np.pi * 0.4 * t)
    x0, y0 = round(cx - crop_w / 2), round(cy - crop_h / 2)
    crop = astronaut()[y0 : y0 + round(crop_h), x0 : x0 + round(crop_w)]
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)


def frame_renderer(plan: ClipPlan) -> Callable[[float], np.ndarray]:
    """A function t -> RGB frame of the plan at time t."""
    if plan.kind == "face":
        return lambda t: face_frame(plan.width, plan.height, t)
    base = background(plan)
    radius_px = plan.radius_fraction * min(plan.width, plan.height)

    def render(t: float) -> np.ndarray:
        image = base.copy()
        for i, track in enumerate(plan.tracks):
            visible, color, x, y = track_state(plan, i, t)
            if visible:
                draw_shape(image, track.shape, color, x, y, radius_px)
        if plan.text_lines:
            draw_text(image, plan.text_lines)
        return image

    return render
