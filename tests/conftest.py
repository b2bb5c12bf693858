"""Shared test set-up: keep temp files and compiled ops inside the project's work folder."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("TMPDIR", str(ROOT / "work" / "tmp"))
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(ROOT / ".cache" / "torch_extensions"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
Path(os.environ["TMPDIR"]).mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT
