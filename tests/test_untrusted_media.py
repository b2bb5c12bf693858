"""Untrusted media at the reader level (issue 21): decoding reads only the file it was given, header limits
refuse bombs before decoding, and bad side files are errors of that input, never crashes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from curation_helpers import tiny_params
from hostile_media import (
    write_concat_list,
    write_moving_clip,
    write_pixel_bomb,
    write_playlist,
    write_png_bomb,
)

from kangaroo.curation.captioning import caption_curated
from kangaroo.curation.cpus import available_cpus, cgroup_cpu_limit
from kangaroo.curation.ledger import LEDGER_FILE, LedgerRow, write_ledger
from kangaroo.train.metrics_log import MetricsLog, MetricsLogError
from kangaroo.video import VideoError, VideoSettings, open_video, read_image
from kangaroo.video.errors import ResourceLimitError

FOREIGN_SIZE = (208, 144)  # a frame size no other test file has: if it shows up, the foreign file was read


@pytest.fixture(scope="module")
def foreign(tmp_path_factory) -> Path:
    """A file elsewhere on the machine (another user's upload, a secret): valid and keepable."""
    return write_moving_clip(tmp_path_factory.mktemp("private") / "secret.mp4", *FOREIGN_SIZE)


@pytest.fixture(scope="module")
def pixel_bomb(tmp_path_factory) -> Path:
    return write_pixel_bomb(tmp_path_factory.mktemp("bomb") / "bomb.mp4")


@pytest.mark.parametrize("name", ["upload.m3u8", "holiday.mp4"])
def test_playlist_naming_another_local_file_is_refused(tmp_path, foreign, name):
    # Before: FFmpeg's HLS demuxer opened the playlist and decoded the foreign file's frames as its own.
    playlist = write_playlist(tmp_path / name, foreign)
    with open_video(foreign) as video:  # the target itself is a fine video
        assert (video.width, video.height) == FOREIGN_SIZE
    with pytest.raises(VideoError) as caught:
        open_video(playlist)
    assert caught.value.cause == "corrupt" and name in str(caught.value)
    if name.endswith(".m3u8"):  # FFmpeg probes HLS by extension: this one reached the format allow-list
        assert "allowed container" in str(caught.value)


def test_concat_script_is_refused(tmp_path, foreign):
    with pytest.raises(VideoError, match="allowed container"):
        open_video(write_concat_list(tmp_path / "splice.mp4", foreign))


def test_allowed_formats_is_the_only_gate(tmp_path, foreign):
    """The same real MP4 opens with its demuxer on the list and is refused with it off the list."""
    clip = write_moving_clip(tmp_path / "clip.mp4")
    with pytest.raises(VideoError, match="allowed container"):
        open_video(clip, VideoSettings(allowed_formats=("matroska",)))
    with open_video(clip, VideoSettings(allowed_formats=("mp4",))) as video:
        assert video.num_frames == 20


def test_pixel_bomb_is_refused_from_its_header(pixel_bomb):
    # Before: the 8192 x 8192 frames were decoded (and converted to RGB), > 1 GB RSS per worker.
    assert pixel_bomb.stat().st_size < 400_000
    with pytest.raises(ResourceLimitError) as caught:
        open_video(pixel_bomb)
    assert caught.value.cause == "resource_limit"
    assert "8192x8192" in str(caught.value) and "video.max_pixels" in str(caught.value)


@pytest.mark.parametrize(
    "limit, expected",
    [({"max_frames": 10}, "video.max_frames"), ({"max_duration_s": 1.0}, "video.max_duration_s")],
)
def test_frame_count_and_duration_limits_come_from_the_header(tmp_path, limit, expected):
    clip = write_moving_clip(tmp_path / "long.mp4", seconds=3.0)
    with pytest.raises(ResourceLimitError, match=expected):
        open_video(clip, VideoSettings(**limit))


def test_decompression_bomb_png_is_a_typed_error(tmp_path):
    # Before: PIL's DecompressionBombError escaped read_image and crashed the training stage.
    bomb = write_png_bomb(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 100_000
    with pytest.raises(ResourceLimitError) as caught:
        read_image(bomb)
    assert caught.value.cause == "resource_limit" and "bomb.png" in str(caught.value)


def test_image_over_our_pixel_cap_is_refused_before_decoding(tmp_path):
    big = write_png_bomb(tmp_path / "big.png", side=4000)  # 16 M pixels: under PIL's own limits
    with pytest.raises(ResourceLimitError, match="4000x4000"):
        read_image(big, max_pixels=10_000_000)
    assert read_image(big, size=32, max_pixels=20_000_000).frames.shape == (1, 32, 32, 3)


def test_packing_rejects_a_pixel_bomb_and_training_skips_one_inside_a_shard(tmp_path):
    """`kangaroo pack` rejects a still over video.max_image_pixels from its header; one packed under a
    laxer cap is skipped by the training reader as `resource_limit`, and the row trains on without it."""

    from PIL import Image

    from kangaroo.model.build import build_processor_only
    from kangaroo.packed.pack import pack_training_data
    from kangaroo.packed.reader import PackedData
    from kangaroo.train.sampler import PackedRowSampler
    from kangaroo.train.stream import PackedRowStream, RecentFrames, stage_index

    params = tiny_params()
    Image.fromarray(np.full((48, 64, 3), 200, np.uint8)).save(tmp_path / "good.png")
    write_png_bomb(tmp_path / "bomb.png", side=8000)  # 64 M pixels > the 50 M default cap
    rows = [
        {"image": "good.png", "caption": "a grey picture", "split": "train"},
        {"image": "bomb.png", "caption": "a hostile picture", "split": "train"},
    ]
    (tmp_path / "images.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = pack_training_data(params, tmp_path, tmp_path / "packed", show_progress=False)
    assert [r["media"].endswith("bomb.png") for r in manifest["rejected"]] == [True]
    assert "max_image_pixels" in manifest["rejected"][0]["reason"] and manifest["num_samples"] == 1

    lax = params.model_copy(update={"video": params.video.model_copy(update={"max_image_pixels": 10**8})})
    pack_training_data(lax, tmp_path, tmp_path / "lax", show_progress=False)
    stage = params.train.stage("image_text_pretrain").model_copy(update={"sources": ["images"]})
    processor = build_processor_only(params.model)
    data = PackedData.open(tmp_path / "lax", params.storage)
    index = stage_index(data, stage, processor)
    assert len(index) == 2
    stream = PackedRowStream(
        data, index, PackedRowSampler(index.length, 4096, 0), stage, params.video, processor
    )
    built = stream.build([0, 1], RecentFrames(1 << 20), tmp_path)
    assert built.skipped == {"resource_limit": 1} and built.batch.num_samples == 1


def test_torn_last_metrics_line_is_dropped_on_resume(tmp_path):
    rows = [{"step": step, "loss": 1.0 / step} for step in (1, 2, 3)]
    torn = '{"step": 4, "loss": 0.2'  # the process died mid-write
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + torn)
    log = MetricsLog(tmp_path, enabled=True, resume_step=3)
    log.log({"step": 4, "loss": 0.25})
    log.close()
    assert [r["step"] for r in log.rows()] == [1, 2, 3, 4]
    assert log.rows()[-1]["loss"] == 0.25


def test_damaged_metrics_line_before_the_end_is_named(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{"step": \n{"step": 3}\n')
    with pytest.raises(MetricsLogError, match="metrics.jsonl:2"):
        MetricsLog(tmp_path, enabled=True, resume_step=3)


def test_unparsable_caption_sidecar_fails_only_its_video(tmp_path):
    # Before: json.loads raised JSONDecodeError and the caption step died with nothing written.
    videos = tmp_path / "videos"
    good = write_moving_clip(videos / "good.mp4")
    bad = write_moving_clip(videos / "bad.mp4", color=(40, 200, 60))
    (videos / "good.txt").write_text("A red square slides to the right.")
    (videos / "bad.json").write_text('{"caption": "unterminated')
    curated = tmp_path / "curated"
    write_ledger(
        curated / LEDGER_FILE,
        [
            LedgerRow(str(v), v.name, "kept", duration=2.0, fps=10.0, width=160, height=120)
            for v in (bad, good)
        ],
    )
    summary = caption_curated(curated, tmp_path / "captioned", tiny_params(), progress=False)
    assert (summary.captioned, summary.failed) == (1, 1)
    dataset = [
        json.loads(line) for line in (tmp_path / "captioned" / "dataset.jsonl").read_text().splitlines()
    ]
    assert [row["key"] for row in dataset] == ["good.mp4"]
    failures = (tmp_path / "captioned" / "caption_failures.jsonl").read_text().splitlines()
    assert len(failures) == 1 and "bad.json" in failures[0] and "not valid JSON" in failures[0]


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "400000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 4.0),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ],
)
def test_workers_are_sized_from_the_cgroup_quota(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_cpu_limit(tmp_path) == expected
    import os

    affinity = len(os.sched_getaffinity(0))
    assert available_cpus(tmp_path) == (
        affinity if expected is None else max(1, min(affinity, int(expected)))
    )
