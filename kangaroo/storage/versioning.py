"""Dataset versions with DVC: `version_dataset` = `dvc add` + `dvc push`, returning the content hash that
training stages record as "what I consumed".

The `dvc` CLI runs in a subprocess of this interpreter (`python -m dvc`): its behaviour is the documented
one a person gets at the shell, and a DVC crash cannot take the caller down. A version is recorded only
after the push succeeded: if `dvc push` fails, the `.dvc` file (and the .gitignore DVC touched) are put back
as they were, so no data missing from the remote is ever registered as a dataset version.
"""

from __future__ import annotations

import configparser
import json
import logging
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from kangaroo.storage.errors import StorageError

log = logging.getLogger(__name__)


class DatasetVersionError(StorageError):
    """`dvc add`/`dvc push` failed or the path is not in a DVC repo; nothing was recorded."""


@dataclass(frozen=True)
class DatasetVersion:
    """One pushed dataset version. `md5` is DVC's content hash (`<md5>.dir` for a folder)."""

    md5: str
    path: str  # relative to the DVC repo root
    remote: str | None  # remote pushed to; None = the repo's default remote
    rev: str | None = None  # git commit of the repo when versioned (None outside git)
    size: int | None = None
    nfiles: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DatasetVersion:
        return cls(**json.loads(text))


def find_dvc_root(path: str | Path) -> Path:
    """The nearest folder at or above `path` holding a `.dvc/` folder, not crossing a git repo root."""
    start = Path(path).resolve()
    for folder in [start, *start.parents]:
        if (folder / ".dvc").is_dir():
            return folder
        if (folder / ".git").exists():
            break  # a git repo without DVC: an enclosing DVC repo would not track it either
    raise DatasetVersionError(
        f"{path}: not inside a DVC repository (no .dvc/ folder above it; run `dvc init`)"
    )


def run_dvc(args: list[str], cwd: Path, timeout_s: float | None = None) -> subprocess.CompletedProcess[str]:
    """Run `dvc ARGS` in `cwd` with this interpreter; raises DatasetVersionError with DVC's own message."""
    command = [sys.executable, "-m", "dvc", *args]
    try:
        result = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=timeout_s, env=os.environ.copy()
        )
    except subprocess.TimeoutExpired as err:
        raise DatasetVersionError(f"`dvc {' '.join(args)}` in {cwd} timed out after {timeout_s}s") from err
    if result.returncode != 0:
        detail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-5:]
        raise DatasetVersionError(f"`dvc {' '.join(args)}` in {cwd} failed: {' | '.join(detail)}")
    return result


def init_dvc_repo(
    root: str | Path, remote_url: str, endpoint_url: str | None = None, name: str = "storage"
) -> Path:
    """Make `root` a DVC repo without git (`dvc init --no-scm`) whose default remote is `remote_url`.

    For places with no checkout (a KFP task's workspace): version a dataset there with version_dataset.
    The remote section is written directly (one `dvc` start-up instead of three); a local remote path is
    made absolute, as `dvc remote add` would resolve it.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if not (root / ".dvc").is_dir():
        run_dvc(["init", "--no-scm", "-q"], root)
    if "://" not in remote_url:
        remote_url = str(Path(remote_url).resolve())
    config = configparser.ConfigParser()
    config.read(root / ".dvc" / "config")
    if not config.has_section("core"):
        config.add_section("core")
    config.set("core", "analytics", "false")
    config.set("core", "remote", name)
    section = f'remote "{name}"'
    for existing in config.sections():  # DVC itself writes ['remote "x"'], with the quotes
        if existing.strip("'") == section:
            config.remove_section(existing)
    config.add_section(section)
    config.set(section, "url", remote_url)
    if endpoint_url:
        config.set(section, "endpointurl", endpoint_url)
    with (root / ".dvc" / "config").open("w") as handle:
        config.write(handle)
    return root


def read_dataset_version(dvc_file: str | Path, remote: str | None = None) -> DatasetVersion:
    """The version recorded in a `.dvc` file (what `dvc add` wrote)."""
    dvc_file = Path(dvc_file)
    try:
        out = yaml.safe_load(dvc_file.read_text())["outs"][0]
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError) as err:
        raise DatasetVersionError(f"{dvc_file}: not a readable .dvc file ({err})") from err
    root = find_dvc_root(dvc_file.parent)
    path = (dvc_file.parent / out["path"]).resolve().relative_to(root)
    return DatasetVersion(
        md5=out["md5"],
        path=path.as_posix(),
        remote=remote,
        rev=_git_rev(root),
        size=out.get("size"),
        nfiles=out.get("nfiles"),
    )


def version_dataset(
    path: str | Path, remote: str | None = None, timeout_s: float | None = None
) -> DatasetVersion:
    """`dvc add PATH` then `dvc push` to `remote` (None: the repo's default remote); returns the version.

    On any failure the `.dvc` file and DVC's .gitignore entry are restored to what they were and
    DatasetVersionError is raised: a version exists only once its data is on the remote.
    """
    target = Path(path).resolve()
    if not target.exists():
        raise DatasetVersionError(f"{path}: no such file or folder to version")
    root = find_dvc_root(target.parent)
    relative = target.relative_to(root).as_posix()
    dvc_file = target.with_name(target.name + ".dvc")
    gitignore = target.parent / ".gitignore"
    saved = {f: (f.read_bytes() if f.exists() else None) for f in (dvc_file, gitignore)}
    remote_args = ["-r", remote] if remote else []
    try:
        run_dvc(["add", relative], root, timeout_s)
        run_dvc(["push", *remote_args, f"{relative}.dvc"], root, timeout_s)
    except DatasetVersionError:
        for file, content in saved.items():
            if content is None:
                file.unlink(missing_ok=True)
            else:
                file.write_bytes(content)
        log.error("versioning %s failed; %s restored, nothing recorded", relative, dvc_file.name)
        raise
    version = read_dataset_version(dvc_file, remote)
    log.info("dataset %s version %s pushed to %s", relative, version.md5, remote or "the default remote")
    return version


def _git_rev(root: Path) -> str | None:
    config = root / ".dvc" / "config"
    if config.is_file() and "no_scm = true" in config.read_text().lower():
        return None  # a git-less workspace (init_dvc_repo) may sit inside an unrelated checkout
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None
