"""Frame strips for the report: a few frames of a video side by side, as an inline JPEG data URI, so a
reviewer sees what a filter rejected or what a caption describes without opening any file."""

from __future__ import annotations

import base64
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kangaroo.errors import KangarooError

log = logging.getLogger(__name__)
STRIP_HEIGHT = 72


@dataclass(frozen=True)
class FrameStrip:
    """`uri` is an inline JPEG of the strip; None with `error` saying why when the video gave no frames."""

    uri: str | None
    error: str | None = None


def _jpeg_uri(rgb: np.ndarray) -> str:
    import cv2

    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise KangarooError("could not JPEG-encode a frame strip")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def _scaled(frame: np.ndarray) -> np.ndarray:
    import cv2

    height, width = frame.shape[:2]
    new_width = max(1, round(width * STRIP_HEIGHT / height))
    return cv2.resize(frame, (new_width, STRIP_HEIGHT), interpolation=cv2.INTER_AREA)


def frame_strip(video: str, num_frames: int, dataset_dir: Path, params=None) -> FrameStrip:
    """`num_frames` frames of `video` (a path, relative to `dataset_dir` if not absolute, or an s3:// URL)."""
    from kangaroo.curation.manifest import is_s3
    from kangaroo.video import open_video

    scratch = None
    try:
        if is_s3(video):
            from kangaroo.storage import ObjectStore
            from kangaroo.storage.settings import StorageSettings

            scratch = Path(tempfile.mkdtemp(prefix="strip-"))
            path = scratch / Path(video).name
            ObjectStore.from_settings(params.storage if params else StorageSettings()).download_file(
                video, path
            )
        else:
            path = Path(video) if Path(video).is_absolute() else dataset_dir / video
        with open_video(path, params.video if params else None) as reader:
            frames = reader.sample_uniform(num_frames, size=None).frames
        gap = np.full((STRIP_HEIGHT, 4, 3), 255, np.uint8)
        pieces = [piece for frame in frames for piece in (_scaled(np.asarray(frame)), gap)][:-1]
        return FrameStrip(_jpeg_uri(np.concatenate(pieces, axis=1)))
    except (KangarooError, OSError, ValueError) as err:  # hostile or missing media: say so in the report
        log.info("no frame strip for %s: %s", video, err)
        return FrameStrip(None, f"{type(err).__name__}: {err}"[:300])
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
