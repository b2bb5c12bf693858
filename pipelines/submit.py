"""Upload the compiled pipeline to a Kubeflow Pipelines endpoint and start a run.

    python -m pipelines.submit --host https://kubeflow.example.com/pipeline \\
        --input-uri s3://raw/videos --corpus-uri s3://raw/corpus --benchmark videomme:s3://bench/videomme \\
        --profile paper --num-gpus 8

The pipeline is compiled for `--profile` (its placement) with the image of this commit (or `--image-digest`).
The run goes to the namespace and service account of `cluster:` in params.yaml, where the manifests put
the MinIO Secret, the checkpoint PVC and the RBAC for TrainJobs.
"""

import argparse
import logging
from pathlib import Path

import kfp

from kangaroo.config import load_params
from kangaroo.logs import setup_logging
from pipelines.compile import compile_pipeline, select_build

log = logging.getLogger("pipelines.submit")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", required=True, help="KFP API endpoint (ml-pipeline or the UI's /pipeline).")
    parser.add_argument("--experiment", default="kangaroo-flow")
    parser.add_argument("--package", type=Path, default=Path("build/kangaroo_pipeline.yaml"))
    parser.add_argument("--input-uri", required=True, help="Raw videos: folder or s3:// prefix.")
    parser.add_argument("--corpus-uri", required=True, help="images.jsonl + questions.jsonl location.")
    parser.add_argument("--benchmark", required=True, help="e.g. videomme:s3://bench/videomme")
    parser.add_argument("--profile", default="paper", help="compiled in: its placement and default")
    parser.add_argument("--image-digest", help="sha256:... of the image (default: tagged git-<commit>)")
    parser.add_argument("--num-gpus", type=int, default=8)
    parser.add_argument("--num-nodes", type=int, default=1)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="params key=value")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    setup_logging("INFO")
    cluster = load_params(profile=args.profile, overrides=args.overrides).cluster
    image = select_build(args.profile, args.image_digest)  # before the pipeline module is imported
    package = compile_pipeline(args.package)
    log.info("compiled for profile %s with image %s", args.profile, image)
    client = kfp.Client(host=args.host, namespace=cluster.namespace)  # auth from kubeconfig / in-cluster SA
    run = client.create_run_from_pipeline_package(
        str(package),
        arguments={
            "input_uri": args.input_uri,
            "corpus_uri": args.corpus_uri,
            "benchmark": args.benchmark,
            "profile": args.profile,
            "num_gpus": args.num_gpus,
            "num_nodes": args.num_nodes,
            "overrides": args.overrides,
        },
        experiment_name=args.experiment,
        namespace=cluster.namespace,
        service_account=cluster.service_account,
    )
    url = f"{args.host}/#/runs/details/{run.run_id}"
    log.info("started run %s in namespace %s: %s", run.run_id, cluster.namespace, url)


if __name__ == "__main__":
    main()
