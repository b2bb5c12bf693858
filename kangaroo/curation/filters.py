"""Curation filters: each one a small class with a name, the frames it needs, a score and a threshold.

Filters run cheapest first (metadata, then low-resolution motion, then faces, then OCR), and a video's
evaluation stops at the first rejection. Frame-based filters receive RGB uint8 frames [T, H, W, 3] that
the frame plan (`kangaroo.curation.frame_plan`) decoded once and resized to each filter's own size.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from kangaroo.curation.settings import CurationSettings


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video; what filters and captioners see besides frames."""

    video: str
    key: str
    duration: float
    fps: float
    width: int
    height: int
    num_frames: int


@dataclass(frozen=True)
class FrameRequest:
    """How many uniformly spread frames a filter needs, and the long side (px) it wants them at."""

    num_frames: int
    size: int


class Filter:
    """A video passes when `passes(score(...))`; `frames` is None for metadata-only filters."""

    name: str = ""
    frames: FrameRequest | None = None

    def score(self, frames: np.ndarray | None, meta: VideoInfo) -> float:
        raise NotImplementedError

    def passes(self, score: float) -> bool:
        raise NotImplementedError


class DurationFilter(Filter):
    name = "duration"

    def __init__(self, min_s: float, max_s: float) -> None:
        self.min_s, self.max_s = min_s, max_s

    def score(self, frames: np.ndarray | None, meta: VideoInfo) -> float:
        return float(meta.duration)

    def passes(self, score: float) -> bool:
        return self.min_s <= score <= self.max_s


class ResolutionFilter(Filter):
    """Score: the short side in pixels."""

    name = "resolution"

    def __init__(self, min_short_side: int) -> None:
        self.min_short_side = min_short_side

    def score(self, frames: np.ndarray | None, meta: VideoInfo) -> float:
        return float(min(meta.width, meta.height))

    def passes(self, score: float) -> bool:
        return score >= self.min_short_side


class AspectRatioFilter(Filter):
    """Score: long side / short side, so portrait and landscape are judged alike."""

    name = "aspect_ratio"

    def __init__(self, max_ratio: float) -> None:
        self.max_ratio = max_ratio

    def score(self, frames: np.ndarray | None, meta: VideoInfo) -> float:
        return max(meta.width, meta.height) / max(1, min(meta.width, meta.height))

    def passes(self, score: float) -> bool:
        return score <= self.max_ratio


class StaticSceneFilter(Filter):
    """Score: mean absolute grey-level difference (0-255) between consecutive low-resolution frames.

    A still image, a slideshow frozen on one slide or a camera pointed at a wall scores ~0; compression
    noise alone stays well under 1 grey level at 64 px, while any moving object lifts the mean.
    """

    name = "static_scene"

    def __init__(self, num_frames: int, size: int, min_motion: float) -> None:
        self.frames = FrameRequest(num_frames, size)
        self.min_motion = min_motion

    def score(self, frames: np.ndarray | None, meta: VideoInfo) -> float:
        grey = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]).astype(np.float32)
        if len(grey) < 2:
            return 0.0
        return float(np.abs(np.diff(grey, axis=0)).mean())

    def passes(self, score: float) -> bool:
        return score >= self.min_motion


@cache
def _face_cascades(use_profile: bool) -> tuple[cv2.CascadeClassifier, ...]:
    # Loaded once per worker process; the XML files ship inside opencv-python-headless.
    names = ["haarcascade_frontalface_default.xml"] + (["haarcascade_profileface.xml"] if use_profile else [])
    cascades = tuple(cv2.CascadeClassifier(cv2.data.haarcascades + name) for name in names)
    if any(c.empty() for c in cascades):
        raise RuntimeError(f"OpenCV Haar cascades missing under {cv2.data.haarcascades}")
    return cascades


def union_area_fraction(shape: tuple[int, int], polygons: list[np.ndarray]) -> float:
    """Fraction of an HxW frame covered by the union of polygons (overlaps counted once)."""
    mask = np.zeros(shape, np.uint8)
    for polygon in polygons:
        cv2.fillPoly(mask, [np.round(polygon).astype(np.int32).reshape(-1, 2)], 1)
    return float(mask.mean())


def _rect_polygon(x: int, y: int, w: int, h: int) -> np.ndarray:
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)


class FaceCoverageFilter(Filter):
    """Score: mean over sampled frames of the frame fraction covered by detected faces.

    Frontal faces plus profiles (the profile cascade also runs on the mirrored frame, since it only
    knows one side). The mean over frames, not the max, so a face passing by does not reject a video
    that is mostly something else: the filter targets talking heads and close-ups.
    """

    name = "face_coverage"

    def __init__(
        self,
        num_frames: int,
        size: int,
        max_coverage: float,
        use_profile: bool = True,
        min_face_fraction: float = 0.08,
        min_neighbors: int = 5,
    ) -> None:
        self.frames = FrameRequest(num_frames, size)
        self.max_coverage = max_coverage
        self.use_profile = use_profile
        self.min_face_fraction = min_face_fraction
        self.min_neighbors = min_neighbors

    def detect(self, frame: np.ndarray) -> list[np.ndarray]:
        grey = cv2.equalizeHist(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
        height, width = grey.shape
        side = max(12, int(self.min_face_fraction * min(height, width)))
        polygons = []
        for index, cascade in enumerate(_face_cascades(self.use_profile)):
            views = [(grey, False)] + ([(cv2.flip(grey, 1), True)] if index > 0 else [])
            for image, mirrored in views:
                found = cascade.detectMultiScale(
                    image, scaleFactor=1.1, minNeighbors=self.min_neighbors, minSize=(side, side)
                )
                for x, y, w, h in found:
                    x = width - x - w if mirrored else x
                    polygons.append(_rect_polygon(int(x), int(y), int(w), int(h)))
        return polygons

    def score(self, frames: np.ndarray | None, meta: VideoInfo) -> float:
        fractions = [union_area_fraction(f.shape[:2], self.detect(f)) for f in frames]
        return float(np.mean(fractions)) if fractions else 0.0

    def passes(self, score: float) -> bool:
        return score <= self.max_coverage


@cache
def _ocr_engine(box_threshold: float):
    # One detector per worker process (model load ~0.5 s). Detection only: an area needs no recognition.
    # limit_type=max with a huge limit keeps our reduced frames at their planned size (rapidocr's default
    # upscales the short side to 736 px, ~15x slower); one intra-op thread because the pool already runs
    # one worker per core.
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR(
        det_limit_side_len=100_000,
        det_limit_type="max",
        det_box_thresh=box_threshold,
        det_intra_op_num_threads=1,
        det_inter_op_num_threads=1,
    )


class TextCoverageFilter(Filter):
    """Score: mean over a few sampled frames of the frame fraction covered by OCR text boxes.

    Boxes come from rapidocr's PP-OCRv4 detector with box confidence > `min_box_confidence` (0.3, as
    Open-Sora keeps OCR boxes); overlapping boxes are counted once.
    """

    name = "text_coverage"

    def __init__(self, num_frames: int, size: int, max_coverage: float, min_box_confidence: float) -> None:
        self.frames = FrameRequest(num_frames, size)
        self.max_coverage = max_coverage
        self.min_box_confidence = min_box_confidence

    def detect(self, frame: np.ndarray) -> list[np.ndarray]:
        engine = _ocr_engine(self.min_box_confidence)
        boxes, _elapsed = engine.text_det(np.ascontiguousarray(frame[..., ::-1]))  # rapidocr wants BGR
        return [] if boxes is None else list(boxes)

    def score(self, frames: np.ndarray | None, meta: VideoInfo) -> float:
        fractions = [union_area_fraction(f.shape[:2], self.detect(f)) for f in frames]
        return float(np.mean(fractions)) if fractions else 0.0

    def passes(self, score: float) -> bool:
        return score <= self.max_coverage


def warm_up(settings: CurationSettings) -> None:
    """Load the detectors a worker will need (before it takes its first video)."""
    if settings.face.enabled:
        _face_cascades(settings.face.use_profile)
    if settings.text.enabled:
        _ocr_engine(settings.text.min_box_confidence)


def build_filters(settings: CurationSettings) -> list[Filter]:
    """All enabled filters, cheapest first: the order a video is evaluated in."""
    basic = settings.basic
    filters: list[Filter] = [
        DurationFilter(basic.min_duration_s, basic.max_duration_s),
        ResolutionFilter(basic.min_short_side),
        AspectRatioFilter(basic.max_aspect_ratio),
    ]
    if settings.static.enabled:
        s = settings.static
        filters.append(StaticSceneFilter(s.num_frames, s.frame_size, s.min_motion))
    if settings.face.enabled:
        f = settings.face
        filters.append(
            FaceCoverageFilter(
                f.num_frames,
                f.frame_size,
                f.max_coverage,
                f.use_profile,
                f.min_face_fraction,
                f.min_neighbors,
            )
        )
    if settings.text.enabled:
        t = settings.text
        filters.append(TextCoverageFilter(t.num_frames, t.frame_size, t.max_coverage, t.min_box_confidence))
    return filters
