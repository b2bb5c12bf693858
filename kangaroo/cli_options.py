"""Options every `kangaroo` subcommand shares: which params file, which profile, which overrides."""

from pathlib import Path
from typing import Annotated

import typer

from kangaroo.config import Params, load_params

ParamsFile = Annotated[
    Path | None,
    typer.Option("--params", help="params.yaml to read (default: $KANGAROO_PARAMS or ./params.yaml)."),
]
Profile = Annotated[str | None, typer.Option("--profile", help="Config profile, e.g. tiny or paper.")]
Overrides = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a param, e.g. --set curation.workers=4 (repeatable)."),
]


def resolve_params(params_file: Path | None, profile: str | None, overrides: list[str] | None) -> Params:
    return load_params(params_file, profile, overrides or ())
