"""`kangaroo synth`: write the deterministic sample corpus."""

from pathlib import Path
from typing import Annotated

import typer

from kangaroo.cli_options import Overrides, ParamsFile, Profile, resolve_params


def synth(
    out: Annotated[
        Path, typer.Option("--out", help="Folder to write videos/, images/ and the JSONL files into.")
    ],
    num_videos: Annotated[
        int | None, typer.Option("--num-videos", help="Number of video files (default: synth.num_videos).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default: synth.seed).")] = None,
    params_file: ParamsFile = None,
    profile: Profile = None,
    overrides: Overrides = None,
) -> None:
    """Write real H.264 clips of coloured shapes, planted bad inputs, captioned images and ground truth."""
    from kangaroo.synth.corpus import write_corpus

    params = resolve_params(params_file, profile, overrides)
    settings = params.synth
    updates = {k: v for k, v in {"num_videos": num_videos, "seed": seed}.items() if v is not None}
    write_corpus(out, settings.model_copy(update=updates))
