"""Version a dataset that lives outside any DVC repository (a KFP artifact on a pod, a scratch folder).

The project's DVC remotes (`.dvc/config` of the checkout, or of /app in the image) stay the one place where
remotes are defined: the artifact gets a `dvc init --no-scm` workspace whose remote has the same URL and
endpoint as the named project remote, then the usual `version_dataset` (add + push, nothing recorded on
failure) runs inside it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from kangaroo.storage.versioning import (
    DatasetVersion,
    DatasetVersionError,
    init_dvc_repo,
    run_dvc,
    version_dataset,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def project_remote(name: str | None, project_root: Path = PROJECT_ROOT) -> tuple[str, str, str | None]:
    """(name, url, endpointurl) of a remote of the project's DVC config; None = the default remote."""
    if not (project_root / ".dvc").is_dir():
        raise DatasetVersionError(f"{project_root}: no .dvc/ config to take the DVC remote from")
    if not name:
        name = run_dvc(["config", "core.remote"], project_root).stdout.strip()
    remotes = dict(
        line.split(maxsplit=2)[:2]
        for line in run_dvc(["remote", "list"], project_root).stdout.splitlines()
        if line
    )
    if name not in remotes:
        raise DatasetVersionError(
            f"DVC remote {name!r} is not defined in {project_root}/.dvc/config ({sorted(remotes)})"
        )
    try:
        endpoint = run_dvc(["config", f"remote.{name}.endpointurl"], project_root).stdout.strip() or None
    except DatasetVersionError:
        endpoint = None  # a local or AWS remote has no endpoint
    return name, remotes[name], endpoint


def dataset_in_workspace(workspace: str | Path) -> Path:
    """Where `version_artifact` put the dataset inside its workspace."""
    return Path(workspace) / "dataset"


def version_artifact(
    source_dir: str | Path,
    workspace: str | Path,
    remote: str | None = None,
    project_root: Path = PROJECT_ROOT,
) -> DatasetVersion:
    """Copy `source_dir` to `workspace/dataset`, make `workspace` a DVC workspace on the project's `remote`,
    and push it; the returned md5 is the dataset version training stages record."""
    name, url, endpoint = project_remote(remote, project_root)
    workspace = Path(workspace)
    init_dvc_repo(workspace, url, endpoint_url=endpoint, name=name)
    target = dataset_in_workspace(workspace)
    shutil.copytree(source_dir, target, dirs_exist_ok=True)
    return version_dataset(target)
