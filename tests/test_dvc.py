"""DVC set-up and dataset versioning against a real S3 server (moto) on 127.0.0.1, in throw-away git
repos built from the project's committed DVC config (never the project repo itself)."""
# ruff: noqa: F811  (pytest fixtures imported from s3_server are used as test arguments)

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from s3_server import S3Server, flaky_proxy, s3_bucket, s3_server  # noqa: F401

from kangaroo.storage import (
    DatasetVersion,
    DatasetVersionError,
    init_dvc_repo,
    read_dataset_version,
    version_dataset,
)

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


def dvc(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run([str(VENV_BIN / "dvc"), *args], cwd, env)


def git(*args: str, cwd: Path) -> None:
    run(["git", "-c", "user.email=t@example.com", "-c", "user.name=test", *args], cwd)


def make_project_copy(dest: Path) -> Path:
    """A git repo holding the project's committed DVC config, Makefile and a link to the venv.

    Datasets go under datasets/ here: the project git-ignores data/, where a `.dvc` file could not be
    committed (stage outputs there are tracked by dvc.lock instead)."""
    dest.mkdir(parents=True)
    git("init", "-q", cwd=dest)
    (dest / ".dvc").mkdir()
    for name in (".dvc/config", ".dvc/.gitignore", ".dvcignore", ".gitignore", "Makefile"):
        shutil.copy(ROOT / name, dest / name)
    git("add", ".dvc/config", ".dvc/.gitignore", ".dvcignore", ".gitignore", "Makefile", cwd=dest)
    (dest / ".venv").symlink_to(ROOT / ".venv")  # for `make`; never committed
    git("commit", "-q", "-m", "init", cwd=dest)
    return dest


def write_dataset(folder: Path, n: int = 5) -> dict[str, str]:
    digests = {}
    for i in range(n):
        path = folder / ("videos" if i % 2 else "") / f"item{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(1000 + 300 * i)
        path.write_bytes(data)
        digests[path.relative_to(folder).as_posix()] = hashlib.sha256(data).hexdigest()
    return digests


def tree_digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


def point_minio_remote(repo: Path, server: S3Server, bucket: str) -> None:
    """The documented way: `make minio-remote` (writes .dvc/config.local only)."""
    run(
        ["make", "-o", "setup", "minio-remote", f"MINIO_ENDPOINT={server.url}", f"MINIO_BUCKET={bucket}"],
        repo,
    )


def write_config_local(repo: Path, server: S3Server, bucket: str) -> None:
    """What `make minio-remote` writes, without its four dvc start-ups (tests share a time budget)."""
    (repo / ".dvc" / "config.local").write_text(
        f"['remote \"minio\"']\n    url = s3://{bucket}/dvc\n    endpointurl = {server.url}\n"
    )


@pytest.fixture
def s3_env(s3_server, monkeypatch) -> S3Server:
    """Credentials in the environment only, as in production."""
    for key, value in s3_server.env().items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # keeps failure tests short
    return s3_server


def test_committed_config_has_remotes_and_no_secrets():
    config = (ROOT / ".dvc" / "config").read_text()
    assert "remote = local" in config and 'remote "minio"' in config and "endpointurl" in config
    assert "secret" not in config.lower() and "access_key" not in config.lower()
    assert ".dvc/config.local" in (ROOT / ".gitignore").read_text()
    listed = run(["git", "ls-files", ".dvc"], ROOT).stdout.split()
    assert "config.local" not in " ".join(listed)


def test_default_local_remote_works_out_of_the_box(tmp_path):
    repo = make_project_copy(tmp_path / "repo")
    digests = write_dataset(repo / "datasets" / "corpus")
    version = version_dataset(repo / "datasets" / "corpus")
    assert version.md5.endswith(".dir") and version.path == "datasets/corpus" and version.nfiles == 5
    assert version.rev is not None and len(version.rev) == 40
    storage = repo / "dvc-storage"  # ../dvc-storage relative to .dvc/: the git-ignored repo-root folder
    md5 = version.md5.removesuffix(".dir")
    manifest = json.loads((storage / "files" / "md5" / md5[:2] / f"{md5[2:]}.dir").read_text())
    assert sorted(entry["relpath"] for entry in manifest) == sorted(digests)
    for entry in manifest:  # every file's bytes are on the remote, content-addressed by their MD5
        stored = storage / "files" / "md5" / entry["md5"][:2] / entry["md5"][2:]
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == digests[entry["relpath"]]
    assert DatasetVersion.from_json(version.to_json()) == version


def test_s3_push_pull_roundtrip_via_make_target(tmp_path, s3_env, s3_bucket):
    repo = make_project_copy(tmp_path / "repo")
    committed_config = (repo / ".dvc" / "config").read_text()
    point_minio_remote(repo, s3_env, s3_bucket)
    assert (repo / ".dvc" / "config").read_text() == committed_config  # only config.local changed
    assert s3_env.url in (repo / ".dvc" / "config.local").read_text()
    assert "config.local" not in run(["git", "status", "--porcelain"], repo).stdout

    digests = write_dataset(repo / "datasets" / "dataset")
    version = version_dataset(repo / "datasets" / "dataset", remote="minio")
    keys = [o["Key"] for o in s3_env.boto_client().list_objects_v2(Bucket=s3_bucket)["Contents"]]
    md5 = version.md5.removesuffix(".dir")
    assert f"dvc/files/md5/{md5[:2]}/{md5[2:]}.dir" in keys
    assert len(keys) == 6  # 5 files + the .dir manifest

    # a second checkout (git clone: .dvc file, no data, no cache) pulls the exact bytes back
    git("add", "datasets/dataset.dvc", "datasets/.gitignore", cwd=repo)
    git("commit", "-q", "-m", "dataset", cwd=repo)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    write_config_local(clone, s3_env, s3_bucket)
    dvc("pull", "-r", "minio", cwd=clone)
    assert tree_digests(clone / "datasets" / "dataset") == digests
    assert read_dataset_version(clone / "datasets" / "dataset.dvc").md5 == version.md5


def test_push_failure_mid_transfer_records_no_version(tmp_path, s3_env, s3_bucket, flaky_proxy):
    repo = make_project_copy(tmp_path / "repo")
    write_config_local(repo, flaky_proxy.server, s3_bucket)
    dataset = repo / "datasets" / "dataset"
    dvc_file = repo / "datasets" / "dataset.dvc"
    write_dataset(dataset, n=6)
    first = version_dataset(dataset, remote="minio")
    pushed = dvc_file.read_text()
    md5 = first.md5.removesuffix(".dir")
    keys = [o["Key"] for o in s3_env.boto_client().list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert f"dvc/files/md5/{md5[:2]}/{md5[2:]}.dir" in keys and first.nfiles == 6

    # new data; the server goes away during its upload and stays away: the pushed version stays recorded
    (dataset / "new.bin").write_bytes(os.urandom(20000))
    flaky_proxy.cut_after(4000)
    with pytest.raises(DatasetVersionError, match="push -r minio") as info:
        version_dataset(dataset, remote="minio")
    assert "datasets/dataset" in str(info.value)
    assert dvc_file.read_text() == pushed
    assert read_dataset_version(dvc_file).md5 == first.md5 == yaml.safe_load(pushed)["outs"][0]["md5"]

    # a dataset never pushed leaves no .dvc file and no .gitignore entry behind
    other = repo / "fresh" / "dataset"
    write_dataset(other, n=2)
    with pytest.raises(DatasetVersionError, match="nosuchremote"):
        version_dataset(other, remote="nosuchremote")
    assert not (repo / "fresh" / "dataset.dvc").exists() and not (repo / "fresh" / ".gitignore").exists()


def test_git_less_workspace_versions_to_its_remote(tmp_path):
    """What a KFP task does: no checkout, a `dvc init --no-scm` workspace with the remote, then version."""
    workspace = init_dvc_repo(tmp_path / "ws", str(tmp_path / "remote"))
    digests = write_dataset(workspace / "dataset", n=3)
    version = version_dataset(workspace / "dataset")
    assert version.rev is None and version.nfiles == 3  # not the rev of the checkout around TMPDIR
    md5 = version.md5.removesuffix(".dir")
    assert (tmp_path / "remote" / "files" / "md5" / md5[:2] / f"{md5[2:]}.dir").is_file()
    assert tree_digests(workspace / "dataset") == digests


def test_version_dataset_errors_name_the_path(tmp_path):
    with pytest.raises(DatasetVersionError, match="no such file"):
        version_dataset(tmp_path / "missing")
    git("init", "-q", cwd=tmp_path)  # a git repo without DVC
    (tmp_path / "loose").mkdir()
    with pytest.raises(DatasetVersionError, match="not inside a DVC repository"):
        version_dataset(tmp_path / "loose")
