"""The two git-ignored files `kubectl apply -k manifests/overlays/<name>` reads, made from the repo.

Kustomize only reads files below a kustomization folder, so the params ConfigMap is generated from a copy
of params.yaml (manifests/base/params/params.yaml), refreshed on every run. The MinIO Secrets (root, and the
scoped `pipeline` and `curation` users the bucket Job creates) are generated from manifests/base/minio/*.env:
each created once with random credentials when missing, never overwritten (MinIO keeps the root credentials
it was first started with; the users keep theirs until the bucket Job runs again).

    python -m kangaroo.k8s.manifest_inputs [--repo .]     # what `make manifests-config` runs
"""

from __future__ import annotations

import argparse
import logging
import secrets
import shutil
from pathlib import Path

from kangaroo.errors import KangarooError

log = logging.getLogger(__name__)

PARAMS_COPY = Path("manifests/base/params/params.yaml")
MINIO_ENV = Path("manifests/base/minio/minio.env")
MINIO_ENV_EXAMPLE = Path("manifests/base/minio/minio.env.example")
# Every credentials file: root, then the scoped identities (docs/security.md). Templates: <file>.example.
MINIO_ENVS = (MINIO_ENV, Path("manifests/base/minio/pipeline.env"), Path("manifests/base/minio/curation.env"))


class ManifestInputError(KangarooError):
    """A file the manifests are generated from is missing or malformed."""


def example_keys(example: Path) -> list[str]:
    """Secret keys listed in minio.env.example (KEY=placeholder lines)."""
    if not example.is_file():
        raise ManifestInputError(f"{example}: missing (the template of the MinIO credentials Secret)")
    keys = [line.split("=", 1)[0].strip() for line in example.read_text().splitlines()]
    keys = [key for key in keys if key and not key.startswith("#")]
    if not keys:
        raise ManifestInputError(f"{example}: no KEY=value lines")
    return keys


def prepare_manifest_inputs(repo: str | Path = ".", params_file: str | Path | None = None) -> dict[str, Path]:
    """Copy params.yaml next to the base kustomization; create each missing MinIO credentials file.

    Credentials are letters and digits (they go into an MC_HOST URL): 20 for the access key, 40 for the
    secret key, from `secrets`. Returns the params copy and the root credentials file.
    """
    root = Path(repo)
    source = Path(params_file) if params_file else root / "params.yaml"
    if not source.is_file():
        raise ManifestInputError(f"{source}: params.yaml not found (the ConfigMap is generated from it)")
    params_copy = root / PARAMS_COPY
    params_copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, params_copy)
    for relative in MINIO_ENVS:
        create_credentials_file(root / relative)
    return {"params": params_copy, "minio_env": root / MINIO_ENV}


def create_credentials_file(env_file: Path) -> None:
    """ENV_FILE with a random value per key of its `.example` template, unless it exists already."""
    if env_file.exists():
        log.info("%s exists: keeping its credentials", env_file)
        return
    lengths = {"accesskey": 20}
    keys = example_keys(env_file.with_name(env_file.name + ".example"))
    env_file.write_text("".join(f"{key}={random_token(lengths.get(key, 40))}\n" for key in keys))
    env_file.chmod(0o600)
    log.info("%s created with random credentials (git-ignored)", env_file)


def random_token(length: int) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=".", help="repository root (holds params.yaml and manifests/)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    prepare_manifest_inputs(args.repo)


if __name__ == "__main__":
    main()
