"""Real files from Debian packages: frame exactness against a sequential decode, and decord fallback.

decord gets some of these wrong (sparse/backward access on Megamind.avi's MPEG-4 with B-frames and on
cockatoo.mp4's H.264 High 4:4:4); the reader must notice and fall back to PyAV.
"""

from __future__ import annotations

import numpy as np
import pytest
from debian_samples import debian_sample
from video_helpers import mean_abs_diff, reference_frames

from kangaroo.video import VideoSettings, open_video
from kangaroo.video.decord_backend import DecordSource

SAMPLE_NAMES = ["cockatoo.mp4", "realshort.mp4", "vtest.avi", "Megamind.avi", "Megamind_bugy.avi", "tree.avi"]


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_real_file_frames_and_timestamps_match_sequential_decode(name):
    path = debian_sample(name)
    with open_video(path) as video:
        assert np.all(np.diff(video.timestamps) > 0)
        clip = video.sample_uniform(6, size=None)
        last = video.num_frames - 1
        backward = video.sample_at(video.timestamps[[last, 1, last // 2]])
    reference, _ = reference_frames(path, keep=[*clip.indices, *backward.indices])
    assert video.num_frames == len(reference)
    for sample in (clip, backward):
        for frame, index in zip(sample.frames, sample.indices, strict=True):
            assert mean_abs_diff(frame, reference[index]) == 0.0, f"{name} frame {index} ({video.backend})"


def test_cockatoo_timestamps_are_the_container_pts():
    path = debian_sample("cockatoo.mp4")
    with open_video(path) as video:
        np.testing.assert_allclose(video.timestamps, np.arange(280) / 20.0, atol=1e-9)
        assert video.duration == pytest.approx(14.0)


def test_decord_is_wrong_on_megamind_and_the_reader_falls_back():
    path = debian_sample("Megamind.avi")
    reference, _ = reference_frames(path, keep=[0, 135, 269])
    # What decord does on its own: sparse, backward access returns a different frame than the reference.
    decord_frames = {index: DecordSource(str(path), 1).get([index])[0] for index in (269, 135)}
    assert max(mean_abs_diff(decord_frames[i], reference[i]) for i in decord_frames) > 5.0
    # Verification alone (deny-list off) catches it, and the reader's frames stay exact.
    settings = VideoSettings(backend="decord", decord_deny_list=False)
    with open_video(path, settings) as video:
        assert video.backend == "pyav" and "differs" in video.backend_reason
        clip = video.sample_at(video.timestamps[[269, 0, 135]])
    assert all(mean_abs_diff(f, reference[i]) == 0.0 for f, i in zip(clip.frames, clip.indices, strict=True))


def test_deny_list_and_verification_choices():
    with open_video(debian_sample("cockatoo.mp4"), VideoSettings(backend="decord")) as video:
        assert video.backend == "pyav" and "4:4:4" in video.backend_reason
    with open_video(debian_sample("vtest.avi"), VideoSettings(backend="decord")) as video:
        assert video.backend == "decord" and video.backend_reason == "decord verified against PyAV"
