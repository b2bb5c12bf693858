"""`kangaroo validate DATASET_DIR --report DIR`: the caption quality gate from the command line."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from kangaroo.cli_options import Overrides, ParamsFile, Profile, resolve_params

log = logging.getLogger(__name__)


def validate(
    dataset_dir: Annotated[Path, typer.Argument(help="Folder with dataset.jsonl and ledger.jsonl.")],
    report: Annotated[Path, typer.Option("--report", help="Folder for index.html, summary.md, result.json.")],
    alignment_model: Annotated[
        Path | None,
        typer.Option(
            "--alignment-model",
            help="The alignment model captioning scored with (`kangaroo alignment-model` folder); "
            "without it the caption-video alignment checks do not run.",
        ),
    ] = None,
    params_file: ParamsFile = None,
    profile: Profile = None,
    overrides: Overrides = None,
) -> None:
    """Run the caption quality gate; exit 1 naming the failed expectations when the dataset fails it."""
    from kangaroo.quality.runner import run_quality_gate

    params = resolve_params(params_file, profile, overrides)
    settings = params.quality
    if settings.expected_frame_captions != params.caption.num_key_frames:
        log.warning(
            "quality.expected_frame_captions=%d differs from caption.num_key_frames=%d",
            settings.expected_frame_captions,
            params.caption.num_key_frames,
        )
    if alignment_model is None:
        log.warning("no --alignment-model: the caption-video alignment checks do not run")
    result = run_quality_gate(dataset_dir, report, settings, alignment_model=alignment_model, params=params)
    if not result.success:
        log.error(
            "quality gate FAILED on %s: %s (details: %s)",
            dataset_dir,
            ", ".join(result.failed_expectations),
            result.markdown_path,
        )
        raise typer.Exit(code=1)
    log.info("quality gate passed on %s; report %s", dataset_dir, result.html_path)
