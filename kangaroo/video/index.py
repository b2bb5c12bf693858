"""Per-file frame index: presentation timestamps of every frame and the keyframes to seek to.

Frame `i` is the i-th frame a sequential decode outputs (presentation order), which is what the reference
decode and every backend agree on. Two ways to build the index:

- from packets (demux only, no decoding): for containers that store a presentation timestamp per packet
  and one frame per packet (MP4/MOV, Matroska/WebM, and AVI without B-frames: AVI's packed B-frames put
  two frames in one packet). Frames are identified by their PTS, which enables keyframe seeking; the
  decoder checks that each keyframe it seeks to really decodes as an intra frame. A wanted frame that
  does not come out, or comes out flagged corrupt, is a mismatch: the reader then rebuilds the index
  the slow way and decodes sequentially.
- from a full decode: for everything else (AVI with packed B-frames, MPEG-PS, odd timestamps). Frames are
  identified by their ordinal, so sampling decodes sequentially.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

logger = logging.getLogger(__name__)

# Demuxers whose packets carry a trustworthy PTS and one frame each, so seeking by PTS is exact.
SEEKABLE_FORMATS = ("mov", "mp4", "matroska", "webm")


class IndexMismatch(RuntimeError):
    """A decode produced a frame the packet index did not predict; the caller rebuilds from a full decode."""


class DecodeTimeout(RuntimeError):
    """The decode deadline passed; the reader turns this into a VideoError naming the file."""


def check_deadline(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise DecodeTimeout


@dataclass(frozen=True)
class FrameIndex:
    """pts: int64 [N] presentation timestamps in stream time-base units (sorted); timestamps: float64 [N]
    seconds; keyframes: int64 [K] frame indices of keyframes (empty when not seekable); seekable: frames
    are addressed by PTS with keyframe seeks, else by decode ordinal; decode_position: int64 [N] packet
    ordinal (decode order) of each frame, empty when not seekable."""

    pts: np.ndarray
    timestamps: np.ndarray
    keyframes: np.ndarray
    seekable: bool
    decode_position: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def frame_of_pts(self, pts: int | None) -> int | None:
        """Frame index with exactly this PTS, or None."""
        if pts is None:
            return None
        position = int(np.searchsorted(self.pts, pts))
        return position if position < len(self.pts) and self.pts[position] == pts else None

    @property
    def num_frames(self) -> int:
        return int(self.timestamps.shape[0])

    def keyframe_before(self, frame: int) -> int:
        """Index of the last keyframe at or before `frame` (0 if none: decode from the start)."""
        position = int(np.searchsorted(self.keyframes, frame, side="right")) - 1
        return int(self.keyframes[position]) if position >= 0 else 0


def _seconds(pts: np.ndarray, time_base: Fraction, start: int) -> np.ndarray:
    return (pts - start).astype(np.float64) * float(time_base)


def index_from_packets(container, stream, deadline: float) -> FrameIndex | None:
    """Index from demuxing alone, or None when this container's packets cannot be trusted for it."""
    formats = container.format.name.split(",")
    avi_without_reordering = "avi" in formats and not stream.codec_context.has_b_frames
    if not (avi_without_reordering or any(name in SEEKABLE_FORMATS for name in formats)):
        return None
    pts_list: list[int] = []
    key_pts: list[int] = []
    for count, packet in enumerate(container.demux(stream)):
        if count % 256 == 0:
            check_deadline(deadline)
        if packet.size == 0:
            continue  # the demuxer's end-of-stream flush packet, or an AVI "drop frame" (no picture)
        if packet.pts is None or getattr(packet, "is_discard", False):
            return None
        pts_list.append(packet.pts)
        if packet.is_keyframe:
            key_pts.append(packet.pts)
    if not pts_list or not key_pts:
        return None
    pts = np.asarray(pts_list, np.int64)
    decode_position = np.argsort(pts, kind="stable")  # display rank -> packet ordinal
    order = pts[decode_position]
    if np.any(np.diff(order) == 0):
        return None  # duplicate PTS: frames could not be told apart
    keyframes = np.searchsorted(order, np.asarray(key_pts, np.int64))
    start = min(stream.start_time if stream.start_time is not None else 0, int(order[0]))
    seconds = _seconds(order, stream.time_base, start)
    return FrameIndex(order, seconds, np.unique(keyframes), True, decode_position.astype(np.int64))


def probe_ordinals(count: int) -> list[int]:
    """Frames kept during an index decode to verify decord: last, first and a power of two in between
    (a sparse, backward pattern), chosen without knowing the frame count in advance."""
    if count <= 0:
        return []
    middle = 1 << max(max(count // 2, 1).bit_length() - 1, 0)
    return sorted({count - 1, 0, min(middle, count - 1)}, key=lambda frame: (frame != count - 1, frame))


def index_from_decode(container, stream, deadline: float) -> tuple[FrameIndex, dict[int, np.ndarray]]:
    """Index from a full decode of a container positioned at its start (never rewound by a seek: a file
    without a seek index, e.g. Matroska without Cues or keyframe flags, refuses even `seek(0)`); no colour
    conversion except of the probe frames, see `probe_ordinals`.

    PTS the decoder reports out of order (AVI with packed B-frames) are sorted: frames come out in
    presentation order, so the k-th frame owns the k-th smallest timestamp. Frames without PTS get times
    from the average frame rate. Returns the index and {ordinal: full-resolution RGB} probe frames.
    """
    stream.thread_type = "AUTO"
    raw: list[int | None] = []
    powers: dict[int, object] = {}
    last = None
    for ordinal, frame in enumerate(container.decode(stream)):
        if ordinal % 64 == 0:
            check_deadline(deadline)
        raw.append(frame.pts)
        if ordinal & (ordinal - 1) == 0:  # 0 and powers of two: candidates for the middle probe
            powers[ordinal] = frame
        last = frame
    probes = {}
    for ordinal in probe_ordinals(len(raw)):
        frame = last if ordinal == len(raw) - 1 else powers[ordinal]
        probes[ordinal] = frame.to_ndarray(format="rgb24")
    powers.clear()
    return _decode_index(raw, stream, container.name), probes


def _decode_index(raw: list[int | None], stream, name: str) -> FrameIndex:
    empty = np.zeros(0, np.int64)
    if raw and all(value is not None for value in raw):
        order = np.sort(np.asarray(raw, np.int64))
        if np.all(np.diff(order) > 0):
            start = min(stream.start_time if stream.start_time is not None else 0, int(order[0]))
            return FrameIndex(order, _seconds(order, stream.time_base, start), empty, False)
    rate = float(stream.average_rate or stream.guessed_rate or 25)
    if raw:
        logger.warning("%s: frames lack usable timestamps; using %.3f fps", name, rate)
    timestamps = np.arange(len(raw), dtype=np.float64) / rate
    return FrameIndex(np.arange(len(raw), dtype=np.int64), timestamps, empty, False)
