"""Object-store credentials, from the environment only (never params.yaml, never git).

Looked up in order:
1. `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (+ optional `AWS_SESSION_TOKEN`): what DVC, boto and the
   Kubernetes Secret in manifests/ use, so one set of variables serves every tool;
2. `MINIO_ROOT_USER` / `MINIO_ROOT_PASSWORD`: a MinIO server's own root account, handy on a dev box.
None set: anonymous requests (public buckets only); a refusal then says which variables to set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ENV_PAIRS = (("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"), ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"))


@dataclass(frozen=True)
class Credentials:
    access_key: str | None
    secret_key: str | None
    session_token: str | None = None
    source: str = "anonymous"

    def __repr__(self) -> str:  # never leak the secret into logs
        return f"Credentials(access_key={self.access_key!r}, source={self.source!r})"


def credentials_from_env(environ: dict[str, str] | None = None) -> Credentials:
    """The first complete pair of ENV_PAIRS found in `environ` (default os.environ)."""
    env = os.environ if environ is None else environ
    for key_var, secret_var in ENV_PAIRS:
        if env.get(key_var) and env.get(secret_var):
            token = env.get("AWS_SESSION_TOKEN") if key_var.startswith("AWS_") else None
            return Credentials(env[key_var], env[secret_var], token or None, source=key_var)
    return Credentials(None, None)
