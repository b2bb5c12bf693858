"""Model registration: copy a finished checkpoint to the registry location with a lineage card.

The card (`kangaroo_card.json` in the registered folder, also returned for KFP artifact metadata) records
what produced the weights: source path, dataset version, evaluation accuracy, parameter count and the
sha256 of every weight file, so a registered model can be traced and verified without loading it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

from kangaroo.errors import KangarooError

CARD_FILE = "kangaroo_card.json"
REQUIRED_FILES = ("config.json", "processor_config.json", "tokenizer.json")


class RegistryError(KangarooError):
    """The checkpoint to register is missing or incomplete (names the folder and the missing file)."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _parameter_count(weight_files: list[Path]) -> int:
    """Sum of tensor sizes from the safetensors headers (no tensor is read)."""
    from safetensors import safe_open

    total = 0
    for file in weight_files:
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():
                shape = handle.get_slice(key).get_shape()
                count = 1
                for dim in shape:
                    count *= dim
                total += count
    return total


def register_checkpoint(
    source: str | Path, destination: str | Path, accuracy: float, dataset_version: str
) -> dict[str, str | float | int]:
    """Copy the checkpoint folder `source` to `destination` and write its card; returns the card.

    Raises RegistryError if `source` is not a complete saved Kangaroo checkpoint (safetensors weights,
    config, tokenizer and processor files).
    """
    source, destination = Path(source), Path(destination)
    if not source.is_dir():
        raise RegistryError(f"{source}: checkpoint folder does not exist")
    missing = [name for name in REQUIRED_FILES if not (source / name).is_file()]
    weights = sorted(source.glob("*.safetensors"))
    if not weights:
        missing.append("*.safetensors")
    if missing:
        raise RegistryError(f"{source}: not a complete Kangaroo checkpoint, missing {', '.join(missing)}")
    config = json.loads((source / "config.json").read_text())
    if config.get("model_type") != "kangaroo":
        raise RegistryError(
            f"{source}/config.json: model_type {config.get('model_type')!r} is not 'kangaroo'"
        )
    shutil.copytree(source, destination, dirs_exist_ok=True, ignore=shutil.ignore_patterns(CARD_FILE))
    card: dict[str, str | float | int] = {
        "source": str(source),
        "dataset_version": str(dataset_version),
        "accuracy": float(accuracy),
        "parameters": _parameter_count(weights),
        "registered_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "transformers_version": str(config.get("transformers_version", "")),
    }
    for file in weights:
        card[f"sha256:{file.name}"] = _sha256(destination / file.name)
    (destination / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True))
    return card
