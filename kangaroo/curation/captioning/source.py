"""The `source` captioner: keep the dataset's own caption (WebVid-style alt text, the sample corpus's
`source_caption`).

Where the caption comes from, first match wins, for a video `dir/clip.mp4`:
1. `dir/clip.txt` (the whole file is the caption);
2. `dir/clip.json` with a `"caption"` key;
3. a `ground_truth.jsonl` or `captions.jsonl` in `dir` or its parent whose row has `"video"` equal to the
   video's path relative to that file and a `"source_caption"` (or `"caption"`) field.

Honest limits: the dataset gives one caption per video, so the *frame* captions are not descriptions of
the frames. They are the source caption's sentences spread in order over the key frames (sentence i/S goes
to frames near position i/S of the video), each tagged with its key frame's real timestamp. The video
caption is the source caption unchanged.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path

from kangaroo.curation.captioning.base import Captioner, CaptionError, FrameCaption, split_sentences
from kangaroo.curation.filters import VideoInfo

log = logging.getLogger(__name__)

CAPTION_INDEXES = ("ground_truth.jsonl", "captions.jsonl")


@cache
def _caption_index(path: Path) -> dict[str, str]:
    """{video: caption} of a caption index; a line that does not parse names no video, so it is skipped
    (with a warning) and the videos it might have described fail as "no source caption"."""
    index = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            log.warning("%s:%d: not JSON, skipped (%s)", path, number, err)
            continue
        if not isinstance(row, dict):
            continue
        caption = row.get("source_caption") or row.get("caption")
        if "video" in row and isinstance(caption, str) and caption:
            index[row["video"]] = caption
    return index


def _json_sidecar_caption(sidecar: Path) -> str | None:
    """The `caption` of a `.json` sidecar; CaptionError (a caption failure of this video only) if the
    uploaded sidecar is not a JSON object with a string caption."""
    try:
        record = json.loads(sidecar.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CaptionError(f"{sidecar}: caption sidecar is not valid JSON: {err}") from err
    if not isinstance(record, dict):
        raise CaptionError(f"{sidecar}: caption sidecar is not a JSON object")
    caption = record.get("caption")
    if caption is not None and not isinstance(caption, str):
        raise CaptionError(f"{sidecar}: `caption` is {type(caption).__name__}, not a string")
    return caption


def find_source_caption(video: Path) -> str:
    """The dataset's own caption of a local video file (see the module docstring for the lookup order)."""
    sidecar_txt = video.with_suffix(".txt")
    if sidecar_txt.is_file() and sidecar_txt.read_text().strip():
        return sidecar_txt.read_text().strip()
    sidecar_json = video.with_suffix(".json")
    if sidecar_json.is_file():
        caption = _json_sidecar_caption(sidecar_json)
        if caption:
            return str(caption).strip()
    for folder in (video.parent, video.parent.parent):
        for name in CAPTION_INDEXES:
            index_path = folder / name
            if index_path.is_file():
                caption = _caption_index(index_path.resolve()).get(
                    video.resolve().relative_to(folder.resolve()).as_posix()
                )
                if caption:
                    return caption.strip()
    raise CaptionError(
        f"{video}: no source caption ({sidecar_txt.name}, {sidecar_json.name}, or a row in "
        f"{' / '.join(CAPTION_INDEXES)} next to it or one folder up)"
    )


class SourceCaptioner(Captioner):
    name = "source"

    def __init__(self, duplicate_iou: float = 0.8) -> None:
        self.duplicate_iou = duplicate_iou

    def caption_frames(self, frames, meta: VideoInfo) -> list[FrameCaption]:
        sentences = split_sentences(find_source_caption(Path(meta.video))) or [""]
        times = [float(t) for t in frames.timestamps]
        return [
            FrameCaption(round(t, 3), sentences[min(len(sentences) - 1, i * len(sentences) // len(times))])
            for i, t in enumerate(times)
        ]

    def caption_video(self, frame_captions: list[FrameCaption], meta: VideoInfo) -> str:
        return find_source_caption(Path(meta.video))
