"""Sampling generated index-coded clips: timestamps (CFR and VFR), frame exactness, samplers, sizes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from video_helpers import mean_abs_diff, reference_frames

from kangaroo.video import SampledFrames, VideoSettings, frame_geometry, open_video, read_image
from kangaroo.video.synthetic import read_frame_index, write_index_clip

VFR_TIMES = np.round(np.cumsum(np.r_[0.0, np.random.default_rng(7).uniform(0.02, 0.3, 59)]), 4)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("video-clips")
    return {
        "cfr": write_index_clip(folder / "cfr.mp4", 75, fps=25, gop=25, bframes=2),
        # B-frames, a 60-frame GOP and moving texture: predicted frames carry real residuals
        "bframes": write_index_clip(folder / "bframes.mp4", 150, fps=30, gop=60, bframes=3, textured=True),
        "vfr": write_index_clip(folder / "vfr.mp4", len(VFR_TIMES), frame_times=VFR_TIMES, gop=12, bframes=2),
        "mkv": write_index_clip(folder / "long_gop.mkv", 120, fps=24, gop=120, bframes=3, textured=True),
        # other codecs on the seek path (MPEG-4 Part 2 with B-frames, VP9) and one on the sequential path
        "mpeg4": write_index_clip(folder / "mpeg4.mp4", 90, gop=30, codec="mpeg4", bframes=2, textured=True),
        "vp9": write_index_clip(
            folder / "vp9.webm",
            90,
            gop=30,
            codec="libvpx-vp9",
            bframes=0,
            textured=True,
            options={"deadline": "realtime", "cpu-used": "8"},
        ),  # fmt: skip
        "avi": write_index_clip(folder / "mpeg4.avi", 90, gop=30, codec="mpeg4", bframes=0, textured=True),
        "avi_bframes": write_index_clip(
            folder / "mpeg4_b.avi", 90, gop=30, codec="mpeg4", bframes=2, textured=True
        ),
        "mpeg2_ts": write_index_clip(
            folder / "mpeg2.ts", 90, gop=30, codec="mpeg2video", bframes=2, textured=True
        ),
    }


def test_cfr_timestamps_duration_and_fps(clips):
    with open_video(clips["cfr"]) as video:
        assert video.num_frames == 75
        np.testing.assert_allclose(video.timestamps, np.arange(75) / 25, atol=1e-9)
        assert video.duration == pytest.approx(3.0)
        assert video.fps == pytest.approx(25.0)
        assert (video.width, video.height, video.codec) == (160, 96, "h264")


def test_vfr_timestamps_are_the_real_presentation_times(clips):
    with open_video(clips["vfr"]) as video:
        assert video.num_frames == len(VFR_TIMES)
        np.testing.assert_allclose(video.timestamps, VFR_TIMES, atol=2e-5)
        clip = video.sample_at([0.0, 1.0, 2.5, VFR_TIMES[-1] + 5])
    # the frame shown at each time is the last one whose timestamp is <= that time
    expected = [int(np.searchsorted(VFR_TIMES, t, side="right") - 1) for t in (0.0, 1.0, 2.5, VFR_TIMES[-1])]
    assert clip.indices.tolist() == expected
    assert [read_frame_index(frame) for frame in clip.frames] == expected
    np.testing.assert_allclose(clip.timestamps, VFR_TIMES[expected], atol=2e-5)


@pytest.mark.parametrize(
    ("name", "backend", "decoder_threads"),
    [
        ("bframes", "pyav", 1),
        ("bframes", "pyav", 2),  # FFmpeg frame threads combined with non-reference skipping
        ("bframes", "decord", 1),
        ("mkv", "pyav", 1),
        ("mkv", "decord", 1),
        ("mpeg4", "pyav", 1),
        ("vp9", "pyav", 1),
        ("mpeg2_ts", "auto", 1),
        ("avi", "auto", 0),
        ("avi_bframes", "auto", 0),
    ],
)
def test_sampled_frames_equal_the_sequential_reference(clips, name, backend, decoder_threads):
    reference, _ = reference_frames(clips[name])
    # min_frames_per_worker=0: split even these short clips across two GOP workers
    settings = VideoSettings(
        backend=backend, decode_workers=2, decoder_threads=decoder_threads, min_frames_per_worker=0
    )
    with open_video(clips[name], settings) as video:
        count = video.num_frames
        assert count == len(reference)
        # sparse, unsorted, repeated and backward requests across several GOPs
        picks = [count - 1, 3, 61, 59, 60, 3, count - 2, 0, 30, count // 2, count // 2 + 1]
        clip = video.sample_at(video.timestamps[picks])
    assert clip.indices.tolist() == picks
    # AVI is seekable by packets only without B-frames (packed B-frames share a packet); MPEG-TS never
    assert video._index.seekable == (name not in ("mpeg2_ts", "avi_bframes"))
    assert isinstance(clip, SampledFrames)
    for frame, index in zip(clip.frames, clip.indices, strict=True):
        assert mean_abs_diff(frame, reference[index]) == 0.0
        assert read_frame_index(frame) == index


def test_uniform_sampling_is_exact_and_covers_the_video(clips):
    reference, _ = reference_frames(clips["bframes"])
    with open_video(clips["bframes"]) as video:
        clip = video.sample_uniform(8)
        too_many = video.sample_uniform(1000)
    assert clip.indices.tolist() == [9, 28, 46, 65, 84, 103, 121, 140]
    assert all(mean_abs_diff(f, reference[i]) == 0.0 for f, i in zip(clip.frames, clip.indices, strict=True))
    np.testing.assert_allclose(clip.timestamps, clip.indices / 30.0, atol=1e-9)
    assert too_many.indices.tolist() == list(range(150))  # capped at the frame count, no repeats


def test_sample_fps_uses_fps_on_short_videos_and_the_cap_on_long_ones(clips):
    with open_video(clips["bframes"]) as video:  # 5 s at 30 fps
        short = video.sample_fps(fps=2.0, max_frames=64)
        capped = video.sample_fps(fps=2.0, max_frames=4)
        dense = video.sample_fps(fps=100.0, max_frames=1000)
    np.testing.assert_allclose(short.timestamps, np.arange(10) * 0.5, atol=1e-9)
    assert capped.indices.tolist() == [18, 56, 93, 131]  # 4 uniform frames over the whole video
    assert dense.indices.tolist() == list(range(150))  # never more than one copy of a frame


@pytest.mark.parametrize(
    ("policy", "size", "shape"),
    [
        ("resize", 48, (48, 80)),  # short side 96 -> 48, aspect 5:3 kept
        ("pad", 64, (64, 64)),
        ("crop", 64, (64, 64)),
        ("pad", None, (96, 160)),
    ],
)
def test_reduced_resolution_shapes_and_aspect(clips, policy, size, shape):
    with open_video(clips["cfr"], VideoSettings(resize_policy=policy)) as video:
        clip = video.sample_uniform(3, size=size)
    assert clip.frames.shape == (3, *shape, 3) and clip.frames.dtype == np.uint8
    if policy == "pad" and size:
        # 160x96 fits as 64x38 (rounded), centred: black bars above and below, picture in the middle
        assert clip.frames[:, :12].max() == 0 and clip.frames[:, -12:].max() == 0
        pictures = clip.frames[:, 13:51]  # 96 * 64 / 160 = 38 rows of picture, offset (64 - 38) / 2
    elif policy == "crop":
        # the centred 96x96 square of a 160x96 frame keeps code cells 3..12 only: compare with the reference
        reference, _ = reference_frames(clips["cfr"])
        for frame, index in zip(clip.frames, clip.indices, strict=True):
            expected = cv2.resize(reference[index][:, 32:128], (64, 64), interpolation=cv2.INTER_AREA)
            assert np.array_equal(frame, expected)
        return
    else:
        pictures = clip.frames
    assert [read_frame_index(picture) for picture in pictures] == clip.indices.tolist()


def test_frame_geometry_rules():
    assert frame_geometry(1280, 720, 448, "resize").canvas == (796, 448)
    assert frame_geometry(720, 1280, 448, "resize").canvas == (448, 796)
    pad = frame_geometry(1280, 720, 448, "pad")
    assert pad.scaled == (448, 252) and pad.offset == (0, 98) and pad.canvas == (448, 448)
    crop = frame_geometry(1280, 720, 448, "crop")
    assert crop.crop == (280, 0, 1000, 720) and crop.canvas == (448, 448)
    with pytest.raises(ValueError, match="policy"):
        frame_geometry(10, 10, 5, "stretch")


def test_to_torch_is_uint8_channels_first(clips):
    with open_video(clips["cfr"]) as video:
        clip = video.sample_uniform(2, size=32, policy="crop")
    tensor = clip.to_torch()
    assert tuple(tensor.shape) == (2, 3, 32, 32) and str(tensor.dtype) == "torch.uint8"
    assert np.array_equal(tensor.numpy()[1].transpose(1, 2, 0), clip.frames[1])


def test_read_image_is_a_one_frame_clip(tmp_path):
    from PIL import Image

    picture = np.zeros((60, 120, 3), np.uint8)
    picture[:, 60:] = (255, 0, 0)
    Image.fromarray(picture).save(tmp_path / "half_red.png")
    clip = read_image(tmp_path / "half_red.png", size=40, policy="resize")
    assert clip.frames.shape == (1, 40, 80, 3)
    assert clip.timestamps.tolist() == [0.0] and clip.indices.tolist() == [0]
    assert tuple(clip.frames[0, 20, 70]) == (255, 0, 0) and tuple(clip.frames[0, 20, 5]) == (0, 0, 0)
