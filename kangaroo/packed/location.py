"""Local folders and `s3://` prefixes behind one small interface: read a JSONL file, fetch a medium to a
local file, publish a finished folder, fetch one file of packed data. S3 goes through the project's
`ObjectStore` (verified transfers, retries, typed errors naming endpoint, bucket and key)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from kangaroo.jsonl import read_jsonl
from kangaroo.packed.errors import PackedDataError
from kangaroo.storage import StorageError, StorageSettings


def is_s3(location: str | Path | None) -> bool:
    return str(location or "").startswith("s3://")


class Location:
    """A folder or `s3://bucket/prefix`; `storage` configures the endpoint for the latter."""

    def __init__(self, location: str | Path, storage: StorageSettings | None = None) -> None:
        # local folders resolved: a clip named by the corpus and by dataset.jsonl is one record
        self.uri = str(location).rstrip("/") if is_s3(location) else str(Path(location).resolve())
        self.storage = storage or StorageSettings()
        self._store = None

    @property
    def remote(self) -> bool:
        return is_s3(self.uri)

    def store(self):
        if self._store is None:
            from kangaroo.storage import ObjectStore

            self._store = ObjectStore.from_settings(self.storage)
        return self._store

    def join(self, relative: str) -> str:
        """URI (or path) of `relative` under this location; absolute paths and URLs stay as they are."""
        if is_s3(relative):
            return relative
        if Path(relative).is_absolute():
            return str(Path(relative).resolve())
        return f"{self.uri}/{relative}" if self.remote else str(Path(self.uri) / relative)

    def relative(self, uri: str) -> str:
        """`uri` relative to this location when it lies under it (the name a record keeps wherever the corpus
        is copied), else `uri` itself."""
        prefix = self.uri + "/"
        return uri[len(prefix) :] if uri.startswith(prefix) else uri

    def read_jsonl(self, name: str, required: bool = True) -> list[dict[str, Any]]:
        """Rows of `name` under this location ([] when absent and not required)."""
        target = self.join(name)
        with tempfile.TemporaryDirectory(prefix="kangaroo-rows-") as tmp:
            local = Path(tmp) / "rows.jsonl"
            if not self.fetch(target, local, required):
                return []
            try:
                return read_jsonl(local, PackedDataError)
            except PackedDataError as err:  # name the input, not the temporary copy
                raise PackedDataError(str(err).replace(str(local), target)) from err

    def fetch(self, target: str, local: Path, required: bool = True) -> bool:
        """Copy `target` (a path or s3:// URL) to `local`; False if it is absent and not required."""
        try:
            if is_s3(target):
                store = self.store()
                if not required and not store.exists(target):
                    return False
                store.download_file(target, local)
                return True
            source = Path(target)
            if not source.is_file():
                if required:
                    raise PackedDataError(f"{target}: no such file")
                return False
            shutil.copyfile(source, local)
            return True
        except StorageError as err:
            raise PackedDataError(f"{target}: {err}") from err

    def publish(self, folder: Path) -> None:
        """Put the files of `folder` at this location (upload, or copy unless it is this folder)."""
        try:
            if self.remote:
                self.store().upload_dir(folder, self.uri)
            elif Path(self.uri).resolve() != folder.resolve():
                shutil.copytree(folder, self.uri, dirs_exist_ok=True)
        except StorageError as err:
            raise PackedDataError(f"publishing packed data to {self.uri}: {err}") from err
