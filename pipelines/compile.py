"""`make compile`: write the pipeline's IR YAML (what the Kubeflow UI uploads) and the same pipeline in KFP's
Kubernetes-native form (a `Pipeline` + `PipelineVersion` of pipelines.kubeflow.org/v2beta1, KFP >= 2.14 with
the Kubernetes pipeline store), which `kubectl apply -f` registers."""

import argparse
import logging
from pathlib import Path

from kfp import compiler
from kfp.compiler.compiler_utils import KubernetesManifestOptions

from kangaroo.logs import setup_logging
from pipelines.kangaroo_pipeline import COMPILE_TIME_PARAMS, kangaroo_pipeline

log = logging.getLogger("pipelines.compile")

PIPELINE_NAME = "kangaroo-flow"


def compile_pipeline(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline_func=kangaroo_pipeline, package_path=str(out))
    return out


def kubernetes_manifest_path(out: Path) -> Path:
    """build/kangaroo_pipeline.yaml -> build/kangaroo_pipeline.k8s.yaml"""
    return out.with_name(f"{out.stem}.k8s{out.suffix}")


def compile_kubernetes_manifest(out: Path, version: str | None = None) -> Path:
    """Pipeline + PipelineVersion objects in the pipeline's namespace (cluster.namespace). VERSION names the
    PipelineVersion (default: the pipeline name plus the image tag, so a new image is a new version)."""
    cluster = COMPILE_TIME_PARAMS.cluster
    tag = cluster.image.rsplit(":", 1)[-1].replace(".", "-").replace("_", "-").lower()
    options = KubernetesManifestOptions(
        pipeline_name=PIPELINE_NAME,
        pipeline_display_name=PIPELINE_NAME,
        pipeline_version_name=version or f"{PIPELINE_NAME}-{tag}",
        namespace=cluster.namespace,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("build/kangaroo_pipeline.yaml"))
    parser.add_argument("--version", help="PipelineVersion name (default: kangaroo-flow-<image tag>)")
    args = parser.parse_args()
    setup_logging("INFO")
    log.info("compiled pipeline to %s", compile_pipeline(args.out))
    manifest = compile_kubernetes_manifest(kubernetes_manifest_path(args.out), args.version)
    log.info("Kubernetes-native Pipeline/PipelineVersion (kubectl apply -f) to %s", manifest)


if __name__ == "__main__":
    main()
