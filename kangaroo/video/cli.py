"""`kangaroo frames`: sample a video the way training does and write the frames (and a contact sheet)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from kangaroo.cli_options import Overrides, ParamsFile, Profile, resolve_params

logger = logging.getLogger(__name__)


def frames(
    video: Annotated[str, typer.Argument(help="Video file (or URL) to sample.")],
    out: Annotated[
        Path, typer.Option("--out", help="NPZ to write: frames uint8 [T,H,W,3], timestamps [T] s.")
    ],
    num_frames: Annotated[int, typer.Option("--num-frames", help="Frames to sample uniformly.")] = 16,
    fps: Annotated[
        float | None,
        typer.Option("--fps", help="Sample at this rate instead (Kangaroo dynamic sampling, capped)."),
    ] = None,
    max_frames: Annotated[
        int | None, typer.Option("--max-frames", help="Cap for --fps sampling (default: --num-frames).")
    ] = None,
    size: Annotated[int | None, typer.Option("--size", help="Target size in pixels (see --policy).")] = None,
    policy: Annotated[
        str | None, typer.Option("--policy", help="resize | pad | crop (default: video.resize_policy).")
    ] = None,
    contact_sheet: Annotated[
        Path | None,
        typer.Option("--contact-sheet", help="Also write a PNG grid with each frame's timestamp."),
    ] = None,
    params_file: ParamsFile = None,
    profile: Profile = None,
    overrides: Overrides = None,
) -> None:
    """Sample frames with their real timestamps; `--fps` switches from uniform to fps-with-cap sampling."""
    import numpy as np

    from kangaroo.video.contact_sheet import write_contact_sheet
    from kangaroo.video.reader import open_video

    settings = resolve_params(params_file, profile, overrides).video
    with open_video(video, settings) as reader:
        if fps is not None:
            clip = reader.sample_fps(fps, max_frames or num_frames, size=size, policy=policy)
        else:
            clip = reader.sample_uniform(num_frames, size=size, policy=policy)
        backend = reader.backend
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, frames=clip.frames, timestamps=clip.timestamps, indices=clip.indices)
    logger.info(
        "%s: %d frames %s via %s, t=%.3f..%.3f s -> %s",
        video,
        len(clip),
        "x".join(map(str, clip.frames.shape[1:3])),
        backend,
        clip.timestamps.min(),
        clip.timestamps.max(),
        out,
    )
    if contact_sheet is not None:
        contact_sheet.parent.mkdir(parents=True, exist_ok=True)
        write_contact_sheet(clip, contact_sheet)
        logger.info("contact sheet -> %s", contact_sheet)
