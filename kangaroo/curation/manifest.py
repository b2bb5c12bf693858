"""The manifest of inputs (a local folder, recursively, or an S3/MinIO prefix) and its deterministic shards.

Shards are contiguous slices of the sorted input list, so the same inputs and shard size always give the
same shards on any machine, and every input lands in exactly one shard.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from kangaroo.errors import KangarooError

DEFAULT_IGNORED_SUFFIXES = (".txt", ".json", ".jsonl", ".md", ".csv", ".yaml", ".yml")


class ManifestError(KangarooError):
    """The input folder or prefix does not exist, is empty, or a shard index is out of range."""


def is_s3(source: str) -> bool:
    return str(source).startswith("s3://")


def _keep(name: str, ignored_suffixes: Sequence[str]) -> bool:
    # Sidecars (captions, ground truth) sit next to videos; hidden files are editor/OS litter.
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and not base.lower().endswith(tuple(ignored_suffixes))


def list_inputs(
    source: str | Path, storage_settings=None, ignored_suffixes: Sequence[str] = DEFAULT_IGNORED_SUFFIXES
) -> list[str]:
    """Every input file under `source` (folder, recursively, or `s3://bucket/prefix`), sorted.

    Local inputs come back as absolute paths (symlinks resolved, see `_local_inputs`), S3 inputs as `s3://`
    URLs. Any file that is not a sidecar counts as an input, whatever its suffix: a broken or mislabelled
    file must show up in the ledger.
    """
    return [item for item, _ in list_input_versions(source, storage_settings, ignored_suffixes)]


def list_input_versions(
    source: str | Path, storage_settings=None, ignored_suffixes: Sequence[str] = DEFAULT_IGNORED_SUFFIXES
) -> list[tuple[str, str]]:
    """`list_inputs` with each input's version: ETag and size of an object, size and mtime of a file (of a
    link itself when it points outside the folder: it is never opened)."""
    source = str(source)
    if is_s3(source):
        from kangaroo.storage import ObjectStore

        if storage_settings is None:
            raise ManifestError(f"{source}: an S3 input needs storage settings (params.storage)")
        from kangaroo.storage import S3Url

        bucket = S3Url.parse(source).bucket
        objects = ObjectStore.from_settings(storage_settings).list_versions(source)
        entries = sorted(
            (f"s3://{bucket}/{key}", f"etag={etag} size={size}")
            for key, etag, size in objects
            if _keep(key, ignored_suffixes)
        )
    else:
        root = Path(source)
        if not root.is_dir():
            raise ManifestError(f"input folder not found: {root}")
        entries = [(item, _file_version(item)) for item in _local_inputs(root.resolve(), ignored_suffixes)]
    if not entries:
        raise ManifestError(f"no input files under {source}")
    return entries


def _file_version(item: str) -> str:
    status = os.lstat(item)
    return f"size={status.st_size} mtime_ns={status.st_mtime_ns}"


def inputs_fingerprint(entries: Sequence[tuple[str, str]]) -> str:
    """One sha256 over (input, version) pairs: changes when an input is added, removed or rewritten."""
    digest = hashlib.sha256()
    for item, version in entries:
        digest.update(f"{item}\0{version}\n".encode())
    return f"sha256:{digest.hexdigest()}"


def _local_inputs(root: Path, ignored_suffixes: Sequence[str]) -> list[str]:
    """Files under `root` (already resolved), each symlink resolved once, here:

    - a link to a file inside `root` becomes that file's path, so a file linked twice is listed once;
    - a link whose target is outside `root` (file, folder, or dangling) stays listed under its own path:
      curation rejects it (`outside_input`) without opening it; a link to a folder inside is skipped
      (its files are listed where they are). Symlinked folders are never walked into.
    """
    found: set[str] = set()
    for folder, dirnames, filenames in os.walk(root):  # followlinks=False
        here = Path(folder)
        dirnames[:] = [d for d in dirnames if not d.startswith(".") or (here / d).is_symlink()]
        entries = [here / name for name in filenames] + [
            here / d for d in dirnames if (here / d).is_symlink()
        ]
        for entry in entries:
            relative = entry.relative_to(root).as_posix()
            if any(part.startswith(".") for part in entry.relative_to(root).parts):
                continue
            if not entry.is_symlink():
                if entry.is_file() and _keep(relative, ignored_suffixes):
                    found.add(str(entry))
                continue
            if not _keep(relative, ignored_suffixes):
                continue
            target = entry.resolve()
            if not target.is_relative_to(root):
                found.add(str(entry))
            elif not target.is_dir():
                found.add(str(target))
    return sorted(found)


def outside_root(root: str | Path, item: str | Path) -> Path | None:
    """The resolved target of local input `item` if it lies outside the folder `root`, else None."""
    target = Path(item).resolve()
    return None if target.is_relative_to(Path(root).resolve()) else target


def input_key(source: str | Path, item: str) -> str:
    """The input's path relative to the folder or prefix it was listed from (POSIX separators)."""
    source = str(source)
    if is_s3(source):
        prefix = source.rstrip("/") + "/"
        return item[len(prefix) :] if item.startswith(prefix) else item.split("/", 3)[-1]
    return Path(item).relative_to(Path(source).resolve()).as_posix()


def make_shards(
    inputs: Sequence[str], shard_size: int | None = None, num_shards: int | None = None
) -> list[list[str]]:
    """Contiguous slices of the sorted inputs: `shard_size` items each, or `num_shards` near-equal slices."""
    ordered = sorted(inputs)
    if num_shards is not None:
        # Exactly num_shards slices whose sizes differ by at most one (a fan-out of N tasks expects N).
        if num_shards < 1:
            raise ManifestError(f"num_shards must be >= 1, got {num_shards}")
        base, extra = divmod(len(ordered), num_shards)
        bounds = [i * base + min(i, extra) for i in range(num_shards + 1)]
        return [ordered[bounds[i] : bounds[i + 1]] for i in range(num_shards)]
    if not shard_size or shard_size < 1:
        raise ManifestError(f"shard_size must be >= 1, got {shard_size}")
    return [ordered[i : i + shard_size] for i in range(0, len(ordered), shard_size)]
