"""`kangaroo frames` through the real typer app: NPZ contents, the contact sheet, and a broken file.

In-process (typer's CliRunner) because importing the whole CLI costs ~20 s of transformers import per process.
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from typer.testing import CliRunner
from video_helpers import Reference, write_matroska_without_seek_index

from kangaroo.cli import app
from kangaroo.video import VideoError
from kangaroo.video.synthetic import read_frame_index, write_index_clip

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def _kangaroo(*args: str):
    return CliRunner().invoke(app, [*args, "--params", str(PARAMS)])


def test_frames_command_writes_npz_and_contact_sheet(tmp_path):
    clip = write_index_clip(tmp_path / "clip.mp4", 100, fps=25, gop=25, width=192, height=96)
    result = _kangaroo(
        "frames", str(clip), "--fps", "2", "--max-frames", "6", "--size", "64", "--policy", "resize",
        "--out", str(tmp_path / "out" / "frames.npz"), "--contact-sheet", str(tmp_path / "out" / "sheet.png"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = np.load(tmp_path / "out" / "frames.npz")
    # 4 s at 2 fps = 8 frames > cap 6: six frames spread uniformly instead
    assert data["frames"].shape == (6, 64, 128, 3) and data["frames"].dtype == np.uint8
    assert data["indices"].tolist() == [8, 25, 41, 58, 75, 91]
    np.testing.assert_allclose(data["timestamps"], data["indices"] / 25.0)
    assert [read_frame_index(frame) for frame in data["frames"]] == data["indices"].tolist()
    sheet = cv2.imread(str(tmp_path / "out" / "sheet.png"))
    assert sheet is not None and sheet.shape[1] == 6 * 192  # one row of six 192-px thumbnails


def test_frames_command_reports_a_broken_file(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 1000)
    result = _kangaroo("frames", str(broken), "--out", str(tmp_path / "x.npz"))
    assert isinstance(result.exception, VideoError)  # kangaroo.cli.main turns it into one line and exit 2
    assert "broken.mp4" in str(result.exception) and result.exception.cause == "corrupt"
    assert not (tmp_path / "x.npz").exists()


def test_frames_command_reads_a_matroska_file_without_a_seek_index(tmp_path):
    """No Cues and no keyframe flags: FFmpeg refuses even seek(0) (EPERM), yet the file decodes front to
    back. The reader falls back to the exact sequential path instead of calling the file undecodable."""
    clip = write_matroska_without_seek_index(tmp_path / "stream.mkv", 147)
    with av.open(str(clip)) as container, pytest.raises(av.FFmpegError):
        container.seek(0)
    assert len(Reference(clip, keep=())) == 147
    result = _kangaroo("frames", str(clip), "--num-frames", "8", "--out", str(tmp_path / "frames.npz"))
    assert result.exit_code == 0, result.output
    data = np.load(tmp_path / "frames.npz")
    assert data["indices"].tolist() == [9, 27, 45, 64, 82, 101, 119, 137]
    assert [read_frame_index(frame) for frame in data["frames"]] == data["indices"].tolist()
    np.testing.assert_allclose(data["timestamps"], data["indices"] / 25.0)
