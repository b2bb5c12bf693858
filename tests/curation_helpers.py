"""Worker functions for the curation pool tests, in a module with no heavy imports so that worker
processes start in milliseconds."""

import functools
import os
import time
from pathlib import Path


def slow_or_dying(item: str) -> str:
    if item == "hang":
        time.sleep(3600)
    if item == "die":
        os._exit(3)  # a decoder segfault looks like this to the parent
    return item.upper()


@functools.cache
def tiny_params(*overrides: str):
    """The project's params.yaml, tiny profile, with `key=value` overrides (cached: tests share them)."""
    from kangaroo.config import load_params

    return load_params(Path(__file__).resolve().parents[1] / "params.yaml", "tiny", list(overrides))
