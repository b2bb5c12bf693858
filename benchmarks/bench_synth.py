"""Sample corpus generation: clips per second with one worker vs. `synth.workers`, and the speed-up ratio."""

import logging
import tempfile
import time

from kangaroo.synth.corpus import write_corpus
from kangaroo.synth.settings import SynthSettings

log = logging.getLogger(__name__)

NUM_VIDEOS = 60


def timed_run(workers: int) -> float:
    settings = SynthSettings(
        num_videos=NUM_VIDEOS,
        num_images=4,
        long_video_seconds=60.0,
        workers=workers,
        num_motion_clips=0,
    )
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        write_corpus(out, settings)
        return time.perf_counter() - started


def main() -> None:
    serial = timed_run(1)
    parallel = timed_run(2)
    log.info(
        "synth %d clips: 1 worker %.1f s (%.1f clips/s), 2 workers %.1f s (%.1f clips/s), speed-up x%.2f",
        NUM_VIDEOS,
        serial,
        NUM_VIDEOS / serial,
        parallel,
        NUM_VIDEOS / parallel,
        serial / parallel,
    )
