"""Open packed data (a folder or an `s3://` prefix): manifest and index in the main process, shards and
records in whichever process reads them (DataLoader workers).

Shards of `s3://` data are downloaded on first use into a local cache through `ObjectStore` (retries, typed
errors) and, local or remote, every shard's size and SHA-256 are checked against the manifest before
litdata reads it: a truncated or overwritten chunk would otherwise make the chunk reader wait for bytes
that never come or allocate garbage sizes. Errors name the shard or URI and the cause (PackedDataError).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kangaroo.packed.errors import PackedDataError
from kangaroo.packed.format import FORMAT, LITDATA_INDEX, MANIFEST, SAMPLES
from kangaroo.packed.location import Location
from kangaroo.storage import StorageError, StorageSettings

log = logging.getLogger(__name__)
logging.getLogger("litdata").setLevel(logging.WARNING)  # it logs its cache set-up at INFO in every worker


def default_cache_dir(configured: str) -> Path:
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "kangaroo-packed"


@dataclass
class PackedData:
    """Handle on packed data; picklable (workers get a copy and open shards themselves)."""

    uri: str
    storage: StorageSettings
    cache_root: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    _verified: set[str] = field(default_factory=set, repr=False)
    _dataset: Any = field(default=None, repr=False)

    @classmethod
    def open(cls, uri: str | Path, storage: StorageSettings, cache_dir: str = "") -> PackedData:
        """Read and check the manifest (and, for s3:// data, fetch the two index files)."""
        location = Location(uri, storage)
        if not location.remote:
            uri = str(Path(uri).resolve())
        data = cls(location.uri if location.remote else str(uri), storage, default_cache_dir(cache_dir))
        local = data.local_dir
        local.mkdir(parents=True, exist_ok=True)
        names = (MANIFEST, LITDATA_INDEX, SAMPLES)
        if location.remote:
            for name in names:
                _fetch(location, name, local / name)
        for name in names:
            if not (local / name).is_file():
                raise PackedDataError(
                    f"{location.join(name)}: not found (is {uri} packed data? run kangaroo pack)"
                )
        try:
            data.manifest = json.loads((local / MANIFEST).read_text())
        except json.JSONDecodeError as err:
            raise PackedDataError(f"{location.join(MANIFEST)}: not valid JSON ({err.msg})") from err
        if data.manifest.get("format") != FORMAT:
            raise PackedDataError(
                f"{location.join(MANIFEST)}: format {data.manifest.get('format')!r}, expected {FORMAT!r}"
            )
        return data

    @property
    def remote(self) -> bool:
        return self.uri.startswith("s3://")

    @property
    def local_dir(self) -> Path:
        """Where the shards are read from: the folder itself, or this data's cache folder."""
        if not self.remote:
            return Path(self.uri)
        return self.cache_root / hashlib.sha256(self.uri.encode()).hexdigest()[:16]

    def samples_file(self) -> Path:
        return self.local_dir / SAMPLES

    def check_tokenizer(self, fingerprint: str) -> None:
        if self.manifest["tokenizer"] != fingerprint:
            raise PackedDataError(
                f"{self.uri}: packed with tokenizer {self.manifest['tokenizer']}, the model's is "
                f"{fingerprint}; re-run kangaroo pack with this profile's model settings"
            )

    def shard(self, name: str) -> Path:
        """Local path of a verified shard (downloaded first for s3:// data)."""
        path = self.local_dir / name
        if name in self._verified:
            return path
        expected = next((s for s in self.manifest["shards"] if s["file"] == name), None)
        if expected is None:
            raise PackedDataError(f"{self.uri}: shard {name} is not in the manifest")
        where = f"{self.uri}/{name}"
        if self.remote and not (path.is_file() and _sha256(path) == expected["sha256"]):
            _fetch(Location(self.uri, self.storage), name, path)
        if not path.is_file():
            raise PackedDataError(f"shard {where}: missing")
        size = path.stat().st_size
        if size != expected["bytes"]:
            raise PackedDataError(
                f"shard {where}: corrupt ({size} bytes, the manifest says {expected['bytes']})"
            )
        if _sha256(path) != expected["sha256"]:
            raise PackedDataError(f"shard {where}: corrupt (SHA-256 differs from the manifest)")
        self._verified.add(name)
        return path

    def record(self, index: int, shard: str) -> tuple[bytes, dict[str, Any]]:
        """(media bytes, meta) of record `index`, which lives in `shard`."""
        self.shard(shard)
        if self._dataset is None:
            from litdata import StreamingDataset

            self._dataset = StreamingDataset(str(self.local_dir))
        try:
            item = self._dataset[int(index)]
            meta = json.loads(item["meta"])
        except Exception as err:  # a verified shard that litdata cannot parse: name it, do not guess
            raise PackedDataError(f"shard {self.uri}/{shard}: record {index} unreadable ({err})") from err
        return item["media"], meta

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_dataset"] = None  # each process opens its own litdata reader
        return state


def _fetch(location: Location, name: str, target: Path) -> None:
    url = location.join(name)
    try:
        location.store().download_file(url, target)
    except StorageError as err:
        raise PackedDataError(f"{url}: {err}") from err


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def iter_samples(path: Path):
    """Rows of samples.jsonl, one at a time."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as err:
                    raise PackedDataError(f"{path}:{number}: not valid JSON ({err.msg})") from err


__all__ = ["PackedData", "default_cache_dir", "iter_samples"]
