"""Every kind of broken input gives one typed VideoError naming the file and the cause; nothing hangs."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from kangaroo.errors import KangarooError
from kangaroo.video import VideoError, VideoSettings, open_video, read_image
from kangaroo.video.synthetic import write_index_clip


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for block in range(16):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, block * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def broken(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    folder = tmp_path_factory.mktemp("broken-videos")
    good = write_index_clip(folder / "good.mp4", 50, gop=25).read_bytes()
    rng = np.random.default_rng(0)
    payload = good.find(b"mdat") + 8
    zeroed = bytearray(good)
    zeroed[payload : payload + len(good) // 2] = bytes(len(good) // 2)
    files = {
        "missing": (folder / "absent.mp4", b"", "missing"),
        "zero_byte": (folder / "zero.mp4", b"", "empty"),
        "truncated": (folder / "truncated.mp4", good[: len(good) // 2], "corrupt"),  # moov atom lost
        "random_bytes": (folder / "random.mp4", rng.integers(0, 256, 50_000, np.uint8).tobytes(), "corrupt"),
        "zeroed_payload": (folder / "zeroed.mp4", bytes(zeroed), "undecodable"),
    }
    out = {}
    for kind, (path, data, cause) in files.items():
        if kind != "missing":
            path.write_bytes(data)
        out[kind] = (path, cause)
    out["audio_only"] = (_audio_only(folder / "audio.mp4"), "no_video_stream")
    return out


@pytest.mark.parametrize(
    "kind", ["missing", "zero_byte", "truncated", "random_bytes", "zeroed_payload", "audio_only"]
)
def test_broken_input_raises_video_error_naming_file_and_cause(broken, kind):
    path, cause = broken[kind]
    with pytest.raises(VideoError) as caught:
        open_video(path)
    assert isinstance(caught.value, KangarooError)
    assert caught.value.cause == cause
    assert str(path) in str(caught.value) and cause in str(caught.value)


def test_timeout_becomes_a_video_error(tmp_path):
    clip = write_index_clip(tmp_path / "clip.mp4", 30, gop=10)
    with pytest.raises(VideoError) as caught:
        open_video(clip, VideoSettings(decode_timeout_s=1e-6))
    assert caught.value.cause == "timeout" and "clip.mp4" in str(caught.value)


def test_read_image_errors(tmp_path, broken):
    with pytest.raises(VideoError, match="missing"):
        read_image(tmp_path / "absent.png")
    with pytest.raises(VideoError, match="corrupt"):
        read_image(broken["random_bytes"][0])
