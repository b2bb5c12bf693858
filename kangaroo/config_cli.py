"""`kangaroo resolve-config`: one resolved config file per step (what dvc.yaml's stages read)."""

import logging
from pathlib import Path
from typing import Annotated

import typer

from kangaroo.cli_options import Overrides, ParamsFile, Profile, resolve_params

log = logging.getLogger(__name__)


def resolve_config(
    out: Annotated[Path, typer.Option("--out", help="Folder for <step>.json, one per step.")],
    steps: Annotated[
        list[str] | None,
        typer.Option("--step", help="Only this step (repeatable); default every step in STEP_SETTINGS."),
    ] = None,
    params_file: ParamsFile = None,
    profile: Profile = None,
    overrides: Overrides = None,
) -> None:
    """Resolve profile and overrides, and write each step's settings plus the code version to OUT/<step>.json.

    A step run with `--params OUT/<step>.json` reads exactly those settings; the file changes only when one of
    them or the library code changes, so it is the step's cache key."""
    from kangaroo.step_config import code_version, write_step_configs

    params = resolve_params(params_file, profile, overrides)
    paths = write_step_configs(params, out, steps)
    version = code_version()
    log.info(
        "profile %s, kangaroo %s (source %s): %d step configs in %s",
        params.profile,
        version["package"],
        version["source"][:19],
        len(paths),
        out,
    )
