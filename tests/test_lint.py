"""`make lint` as part of `make test`: ruff's checks and formatting hold for every Python file we ship."""

import subprocess
import sys
from pathlib import Path

PACKAGES = ["kangaroo", "components", "pipelines", "tests", "benchmarks"]


def ruff(*args: str, root: Path) -> subprocess.CompletedProcess:
    ruff_bin = Path(sys.executable).with_name("ruff")
    return subprocess.run([str(ruff_bin), *args, *PACKAGES], cwd=root, capture_output=True, text=True)


def test_ruff_check(project_root: Path):
    result = ruff("check", "--no-cache", root=project_root)
    assert result.returncode == 0, result.stdout


def test_ruff_format(project_root: Path):
    result = ruff("format", "--check", "--no-cache", root=project_root)
    assert result.returncode == 0, result.stdout
