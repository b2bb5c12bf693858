"""`kangaroo version-dataset` (DVC add + push) and `kangaroo dvc-plot-data` (JSONL curves for `dvc plots`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from kangaroo.cli_options import Overrides, ParamsFile, Profile, resolve_params

log = logging.getLogger(__name__)


def version_dataset_command(
    path: Annotated[Path, typer.Argument(help="Dataset file or folder inside a DVC repository.")],
    remote: Annotated[
        str | None,
        typer.Option("--remote", help="DVC remote (default: storage.dvc_remote, else the default)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the version as JSON to this file.")
    ] = None,
    params_file: ParamsFile = None,
    profile: Profile = None,
    overrides: Overrides = None,
) -> None:
    """`dvc add` + `dvc push` PATH; the version (md5, rev) is logged and optionally written as JSON."""
    from kangaroo.storage.versioning import version_dataset

    params = resolve_params(params_file, profile, overrides)
    version = version_dataset(path, remote=remote or params.storage.dvc_remote or None)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(version.to_json() + "\n")
    log.info("version %s", version.to_json())


def dvc_plot_data(
    jsonl: Annotated[Path, typer.Argument(help="JSONL file, one row per logged step (metrics.jsonl).")],
    out: Annotated[
        Path | None, typer.Option("--out", help="JSON file to write (default: same name with .json).")
    ] = None,
) -> None:
    """Rewrite a JSONL log as one JSON list: `dvc plots` reads JSON, CSV and YAML but not JSONL."""
    from kangaroo.storage.plots import jsonl_to_json

    written = jsonl_to_json(jsonl, out)
    log.info("%s -> %s", jsonl, written)
