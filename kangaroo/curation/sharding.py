"""The manifest file that fans curation out over shards: written once, read by every shard's task.

Format (JSON): `{"source": folder-or-prefix, "shard_size": int, "num_inputs": int, "shards": [[input, ...],
...]}`; inputs are absolute paths or `s3://` URLs, sorted, each in exactly one shard.
"""

from __future__ import annotations

import json
from pathlib import Path

from kangaroo.config import Params
from kangaroo.curation.ledger import ShardSummary
from kangaroo.curation.manifest import (
    ManifestError,
    inputs_fingerprint,
    is_s3,
    list_input_versions,
    make_shards,
)
from kangaroo.errors import InfrastructureError


class InputsChanged(InfrastructureError):
    """The inputs changed between their fingerprint and the shard plan: an infrastructure race, not a
    verdict on any video (the task fails; a retry plans from the new fingerprint)."""


def _listed(source: str | Path, params: Params | None) -> tuple[str, list[tuple[str, str]]]:
    from kangaroo.curation.settings import CurationSettings
    from kangaroo.storage.settings import StorageSettings

    storage = params.storage if params else StorageSettings()
    ignored = (params.curation if params else CurationSettings()).ignore_suffixes
    source = str(source) if is_s3(str(source)) else str(Path(source).resolve())
    return source, list_input_versions(source, storage, ignored)


def fingerprint_source(source: str | Path, params: Params | None = None) -> str:
    """The identity of `source`'s inputs (names + ETags/sizes, or paths + sizes/mtimes) as one sha256."""
    return inputs_fingerprint(_listed(source, params)[1])


def write_manifest(
    source: str | Path,
    manifest_path: str | Path,
    shard_size: int,
    params: Params | None = None,
    expected_fingerprint: str | None = None,
) -> list[int]:
    """List `source`, split it into shards of `shard_size`, write the manifest; returns the shard indices.

    `params` gives the S3 endpoint for `s3://` sources and the ignored sidecar suffixes (default: the
    defaults of params.yaml's `storage:` and `curation:` blocks). With `expected_fingerprint` (what the
    pipeline keyed this plan on) the listing must still be those inputs, else InputsChanged.
    """
    source, entries = _listed(source, params)
    fingerprint = inputs_fingerprint(entries)
    if expected_fingerprint and fingerprint != expected_fingerprint:
        raise InputsChanged(
            f"{source}: inputs changed since they were fingerprinted "
            f"({expected_fingerprint} -> {fingerprint})"
        )
    inputs = [item for item, _ in entries]
    shards = make_shards(inputs, shard_size)
    manifest = {
        "source": source,
        "shard_size": shard_size,
        "num_inputs": len(inputs),
        "inputs_fingerprint": fingerprint,
        "shards": shards,
    }
    path = Path(manifest_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    return list(range(len(shards)))


def read_manifest(manifest_path: str | Path) -> dict:
    path = Path(manifest_path)
    try:
        manifest = json.loads(path.read_text())
        shards = manifest["shards"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ManifestError(f"{path}: not a curation manifest: {err}") from err
    if sum(len(s) for s in shards) != manifest.get("num_inputs"):
        raise ManifestError(
            f"{path}: shards hold {sum(len(s) for s in shards)} inputs, header says "
            f"{manifest.get('num_inputs')}"
        )
    return manifest


def curate_manifest_shard(
    manifest_path: str | Path, shard_index: int, out_dir: str | Path, params: Params
) -> ShardSummary:
    """Curate shard `shard_index` of a manifest into `out_dir` (ledger.jsonl + summary.json)."""
    from kangaroo.curation.runner import curate_shard

    manifest = read_manifest(manifest_path)
    shards = manifest["shards"]
    if not 0 <= shard_index < len(shards):
        raise ManifestError(f"{manifest_path}: shard {shard_index} out of range (0..{len(shards) - 1})")
    return curate_shard(shards[shard_index], out_dir, params, shard=shard_index, source=manifest["source"])
