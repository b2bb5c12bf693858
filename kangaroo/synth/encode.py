"""Write clip plans to files: H.264 MP4 with PyAV, and the planted broken inputs."""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from kangaroo.synth.clip_plan import TIME_BASE_HZ, ClipPlan
from kangaroo.synth.render import frame_renderer

TIME_BASE = Fraction(1, TIME_BASE_HZ)
AUDIO_RATE = 44_100
AUDIO_FRAME = 1024  # AAC frame size
M_PERTURB = -6  # glibc mallopt() parameter: fill every new heap allocation with a fixed byte
HEAP_FILL = 0x5A


def _glibc_mallopt() -> Callable[[int, int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): no mallopt
        return None


@contextmanager
def filled_heap_allocations() -> Iterator[None]:
    """Every heap allocation inside the block starts with the same bytes (glibc's M_PERTURB).

    The encoder (libx264 through FFmpeg) reads heap bytes it never wrote. With whatever earlier allocations
    left there, the same frames encoded to different bytes depending on what the process had done before
    (measured: 4 of 38 clips differed across 3 concurrent runs), so DVC would version a regenerated corpus as
    new data. With a fixed fill every run writes the same bytes, whichever the fill value.
    """
    mallopt = _glibc_mallopt()
    if mallopt is None:
        yield
        return
    mallopt(M_PERTURB, HEAP_FILL)
    try:
        yield
    finally:
        mallopt(M_PERTURB, 0)


def write_h264(plan: ClipPlan, path: Path, preset: str) -> None:
    """Encode the plan's frames with libx264 at their exact presentation times (explicit PTS, 1/90000 s).

    One encoder thread per clip: clips are encoded in parallel, and a single thread makes the bytes
    reproducible.
    """
    render = frame_renderer(plan)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(plan.fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = plan.width, plan.height, "yuv420p"
        stream.time_base = TIME_BASE
        stream.codec_context.time_base = TIME_BASE
        stream.options = {"preset": preset, "threads": "1"}
        for t in plan.frame_times:
            frame = av.VideoFrame.from_ndarray(render(t), format="rgb24")
            frame.pts, frame.time_base = round(t * TIME_BASE_HZ), TIME_BASE
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def write_audio_only(path: Path, seconds: float, seed: int) -> None:
    """An AAC tone in an MP4 container: a valid media file with no video stream."""
    rng = np.random.default_rng(seed)
    pitch = float(rng.uniform(220, 880))
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=AUDIO_RATE)
        stream.layout = "mono"
        for start in range(0, int(seconds * AUDIO_RATE), AUDIO_FRAME):
            samples = 0.3 * np.sin(2 * np.pi * pitch * (start + np.arange(AUDIO_FRAME)) / AUDIO_RATE)
            frame = av.AudioFrame.from_ndarray(samples.astype(np.float32)[None], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = AUDIO_RATE, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def write_clip(plan: ClipPlan, path: Path, preset: str) -> int:
    """Write one file under videos/ for any kind of plan; returns its size in bytes."""
    with filled_heap_allocations():
        _write(plan, path, preset)
    return path.stat().st_size


def _write(plan: ClipPlan, path: Path, preset: str) -> None:
    if plan.kind == "zero_byte":
        path.write_bytes(b"")
    elif plan.kind == "random_bytes":
        rng = np.random.default_rng(plan.seed)
        path.write_bytes(rng.integers(0, 256, int(rng.integers(10_000, 200_000)), dtype=np.uint8).tobytes())
    elif plan.kind == "audio_only":
        write_audio_only(path, 3.0, plan.seed)
    else:
        write_h264(plan, path, preset)
        if plan.kind == "truncated":
            # Half a file loses the moov atom that mp4 muxers write last: a typical broken upload.
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
