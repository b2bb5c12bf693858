"""`make compile [PROFILE=paper] [IMAGE_DIGEST=sha256:...]`: write the pipeline's IR YAML (what the Kubeflow
UI uploads) and the same pipeline in KFP's Kubernetes-native form (a `Pipeline` + `PipelineVersion` of
pipelines.kubeflow.org/v2beta1, KFP >= 2.14 with the Kubernetes pipeline store), which `kubectl apply -f`
registers.

One compiled pipeline per profile: its placement (node pools, GPUs, retries) is that profile's `cluster:`
block and its `profile` parameter defaults to it. Its image is `cluster.image`'s repository at IMAGE_DIGEST,
else at the tag `git-<commit>` of this checkout (`-dirty` with uncommitted changes), never a fixed tag; every
task gets that reference as $KANGAROO_IMAGE and $KANGAROO_IMAGE_DIGEST (part of each step's code version).
"""

import argparse
import logging
import os
import re
import subprocess
from pathlib import Path

from kangaroo.config import ConfigError, load_params
from kangaroo.logs import setup_logging
from kangaroo.step_config import COMPILE_PROFILE_ENV, IMAGE_ENV

log = logging.getLogger("pipelines.compile")

PIPELINE_NAME = "kangaroo-flow"
ROOT = Path(__file__).resolve().parents[1]
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def image_repository(image: str) -> str:
    """`registry:5000/org/kangaroo:0.1.0` or `...@sha256:...` -> `registry:5000/org/kangaroo`."""
    image = image.split("@", 1)[0]
    name, _, tag = image.rpartition(":")
    return name if name and "/" not in tag else image


def image_reference(image: str, digest: str | None = None, checkout: Path = ROOT) -> str:
    """IMAGE's repository by DIGEST, else tagged with the checkout's commit: what was built from this code."""
    repository = image_repository(image)
    if digest:
        if not DIGEST.fullmatch(digest):
            raise ConfigError(f"IMAGE_DIGEST {digest!r}: expected sha256: and 64 lowercase hex digits")
        return f"{repository}@{digest}"
    git = ["git", "-C", str(checkout)]
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        raise ConfigError(f"{checkout}: not a git checkout; give the image's IMAGE_DIGEST=sha256:...")
    status = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, check=True
    )
    return f"{repository}:git-{head.stdout.strip()[:12]}{'-dirty' if status.stdout.strip() else ''}"


def compile_pipeline(out: Path) -> Path:
    from kfp import compiler

    from pipelines.kangaroo_pipeline import kangaroo_pipeline

    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline_func=kangaroo_pipeline, package_path=str(out))
    return out


def kubernetes_manifest_path(out: Path) -> Path:
    """build/kangaroo_pipeline.yaml -> build/kangaroo_pipeline.k8s.yaml"""
    return out.with_name(f"{out.stem}.k8s{out.suffix}")


def version_name(profile: str, image: str) -> str:
    """kangaroo-flow-<profile>-<image tag or digest prefix>: a new image or profile is a new version."""
    pinned = image.split("@sha256:", 1)[1][:12] if "@sha256:" in image else image.rsplit(":", 1)[-1]
    return re.sub(r"[^a-z0-9-]", "-", f"{PIPELINE_NAME}-{profile}-{pinned}".lower())


def compile_kubernetes_manifest(out: Path, version: str | None = None) -> Path:
    """Pipeline + PipelineVersion objects in the pipeline's namespace (cluster.namespace). VERSION names the
    PipelineVersion (default: version_name of the compiled profile and image)."""
    from kfp import compiler
    from kfp.compiler.compiler_utils import KubernetesManifestOptions

    from components.image import COMPILE_TIME_PARAMS, PROJECT_IMAGE
    from pipelines.kangaroo_pipeline import kangaroo_pipeline

    options = KubernetesManifestOptions(
        pipeline_name=PIPELINE_NAME,
        pipeline_display_name=PIPELINE_NAME,
        pipeline_version_name=version or version_name(COMPILE_TIME_PARAMS.profile, PROJECT_IMAGE),
        namespace=COMPILE_TIME_PARAMS.cluster.namespace,
        include_pipeline_manifest=True,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(
        pipeline_func=kangaroo_pipeline,
        package_path=str(out),
        kubernetes_manifest_options=options,
        kubernetes_manifest_format=True,
    )
    return out


def select_build(profile: str | None, image_digest: str | None) -> str:
    """Set the compile-time profile and image for the pipeline module (imported after this); the image."""
    params = load_params(profile=profile)
    image = image_reference(params.cluster.image, image_digest)
    os.environ[COMPILE_PROFILE_ENV] = params.profile
    os.environ[IMAGE_ENV] = image
    return image


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("build/kangaroo_pipeline.yaml"))
    parser.add_argument("--profile", help="profile whose placement and defaults the pipeline gets")
    parser.add_argument("--image-digest", help="sha256:... of the image built from this commit")
    parser.add_argument("--version", help="PipelineVersion name (default: kangaroo-flow-<profile>-<image>)")
    parser.add_argument("--print-image", action="store_true", help="print the image reference and exit")
    args = parser.parse_args()
    setup_logging("INFO")
    try:
        image = select_build(args.profile, args.image_digest or os.environ.get("IMAGE_DIGEST") or None)
    except ConfigError as err:
        parser.exit(2, f"error: {err}\n")
    if args.print_image:
        print(image)  # noqa: T201 (the command's output, for `docker build -t`)
        return
    log.info("profile %s, image %s", os.environ[COMPILE_PROFILE_ENV], image)
    log.info("compiled pipeline to %s", compile_pipeline(args.out))
    manifest = compile_kubernetes_manifest(kubernetes_manifest_path(args.out), args.version)
    log.info("Kubernetes-native Pipeline/PipelineVersion (kubectl apply -f) to %s", manifest)


if __name__ == "__main__":
    main()
