"""Logging set-up shared by the CLI and the KFP components."""

import logging

from rich.console import Console
from rich.logging import RichHandler


def setup_logging(level: str = "INFO") -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}; use DEBUG, INFO, WARNING or ERROR")
    logging.basicConfig(
        level=numeric,
        format="%(name)s: %(message)s",
        datefmt="[%X]",
        # stderr, so what a command prints (JSON, YAML) can be piped without its logs
        handlers=[RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=True)],
        force=True,
    )
