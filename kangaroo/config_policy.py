"""What a run's config may point at: the `security:` allow-lists and the deployment-fixed settings.

A KFP run passes the whole config as run parameters (params text, profile, `--set` overrides), so any
setting that names an endpoint, an environment variable, an image or a Secret could send a credential
somewhere. Three rules keep that from happening:

1. Settings that name endpoints or key variables must be on the profile's `security:` allow-lists
   (`caption.openai.base_url`, `caption.openai.api_key_env`, `storage.endpoint`).
2. The object-store credential variables are never a captioner key, whatever the allow-list says (fixed
   here, in code).
3. `security.*` and the cluster settings that name images, Secrets, variables and accounts are fixed by
   the deployed params.yaml (the image's, or the ConfigMap's): a `--set` of one is refused, and params text
   given by a run must agree with the deployed file on them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import field_validator

from kangaroo.errors import KangarooError
from kangaroo.settings_base import Section
from kangaroo.storage.credentials import ENV_PAIRS

# Every variable an object-store client reads a credential from (kangaroo.storage.credentials, DVC, boto).
OBJECT_STORE_ENV = frozenset({name for pair in ENV_PAIRS for name in pair} | {"AWS_SESSION_TOKEN"})

# Keys no run may set: the allow-lists themselves, and what decides which image runs with which Secret
# as which account. Dotted paths; a key below one of them (cluster.minio_secret_env.secretkey) is covered.
DEPLOYMENT_KEYS = (
    "security",
    "cluster.image",
    "cluster.namespace",
    "cluster.service_account",
    "cluster.minio_secret",
    "cluster.minio_secret_env",
    "cluster.curation_minio_secret",
    "cluster.trainer_service_account",
    "cluster.trainer_token_secret",
    "cluster.trainer_token_mount",
)


class SecuritySettings(Section):
    """Allow-lists (values and why in params.yaml). Entries are compared exactly, after trailing '/'."""

    # OpenAI-compatible captioning servers the frames (and the key) may be sent to.
    caption_endpoints: list[str] = ["http://captioner.kangaroo.svc.cluster.local:8000/v1"]
    # Environment variables the captioner may read its bearer token from.
    caption_key_envs: list[str] = ["OPENAI_API_KEY"]
    # S3/MinIO endpoints (`host:port`, or `host` for any port) the object-store credentials are used with.
    storage_endpoints: list[str] = ["minio.kangaroo.svc.cluster.local:9000"]

    @field_validator("caption_key_envs")
    @classmethod
    def no_object_store_variable(cls, names: list[str]) -> list[str]:
        refused = sorted(OBJECT_STORE_ENV & set(names))
        if refused:
            raise ValueError(f"{refused} hold object-store credentials and are never a captioner key")
        return names


def refuse_deployment_override(dotted: str, assignment: str) -> str | None:
    """The refusal message when `dotted` (an override's key) is or contains a deployment-fixed key."""
    for fixed in DEPLOYMENT_KEYS:
        if dotted == fixed or dotted.startswith(fixed + ".") or fixed.startswith(dotted + "."):
            return (
                f"override {assignment!r}: {fixed} is fixed by the deployed params.yaml and cannot be set "
                "per run (it names an image, a Secret, an account or an allow-list)"
            )
    return None


def lookup(tree: dict[str, Any], dotted: str) -> Any:
    node: Any = tree
    for key in dotted.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return node


def deployment_mismatch(run_tree: dict[str, Any], deployed_tree: dict[str, Any]) -> str | None:
    """The first deployment-fixed key whose value differs between two resolved params trees."""
    for fixed in DEPLOYMENT_KEYS:
        if lookup(run_tree, fixed) != lookup(deployed_tree, fixed):
            return fixed
    return None


def same_url(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def endpoint_allowed(endpoint: str, allowed: list[str]) -> bool:
    """`host:port` against entries `host:port` (exact) or `host` (any port); an ipv6/odd form must match
    exactly."""
    host = urlsplit(f"//{endpoint}").hostname or endpoint
    return any(entry == endpoint or (":" not in entry and entry == host) for entry in allowed)


def readable(params, dotted: str) -> Any:
    """The setting at DOTTED, or None when PARAMS (a step's config) does not hold it."""
    node = params
    for key in dotted.split("."):
        try:
            node = getattr(node, key)
        except KangarooError:  # StepScopeError: not one of this step's settings
            return None
    return node


def policy_violations(params, security: SecuritySettings | None = None) -> list[str]:
    """Every setting of PARAMS (validated `Params`, or a step's config holding some blocks) that points
    outside the `security:` allow-lists (PARAMS' own, or SECURITY), each naming the key and its list."""
    security = security or params.security
    problems = []
    base_url, key_env = (
        readable(params, "caption.openai.base_url"),
        readable(params, "caption.openai.api_key_env"),
    )
    if base_url is not None and not any(
        same_url(base_url, allowed) for allowed in security.caption_endpoints
    ):
        problems.append(
            f"caption.openai.base_url: {base_url!r} is not in security.caption_endpoints "
            f"{security.caption_endpoints}"
        )
    secret_variables = set(OBJECT_STORE_ENV) | set(
        (readable(params, "cluster.minio_secret_env") or {}).values()
    )
    if key_env is not None and key_env in secret_variables:
        problems.append(
            f"caption.openai.api_key_env: {key_env} holds object-store credentials; "
            "the captioner never reads it"
        )
    elif key_env is not None and key_env not in security.caption_key_envs:
        problems.append(
            f"caption.openai.api_key_env: {key_env!r} is not in security.caption_key_envs "
            f"{security.caption_key_envs}"
        )
    endpoint = readable(params, "storage.endpoint")
    if endpoint is not None and not endpoint_allowed(endpoint, security.storage_endpoints):
        problems.append(
            f"storage.endpoint: {endpoint!r} is not in security.storage_endpoints "
            f"{security.storage_endpoints}"
        )
    return problems
