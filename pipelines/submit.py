"""Upload the compiled pipeline to a Kubeflow Pipelines endpoint and start a run.

    python -m pipelines.submit --host https://kubeflow.example.com/pipeline \
        --input-uri s3://raw/videos --corpus-uri s3://raw/corpus --benchmark videomme:s3://bench/videomme \
        --profile paper --num-gpus 8
"""

import argparse
import logging
from pathlib import Path

import kfp

from kangaroo.logs import setup_logging
from pipelines.compile import compile_pipeline

log = logging.getLogger("pipelines.submit")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--host", required=True, help="KFP API endpoint (ml-pipeline service or the UI's /pipeline)."
    )
    parser.add_argument("--namespace", default="kubeflow", help="Kubeflow profile namespace for the run.")
    parser.add_argument("--experiment", default="kangaroo-flow")
    parser.add_argument("--package", type=Path, default=Path("build/kangaroo_pipeline.yaml"))
    parser.add_argument("--input-uri", required=True)
    parser.add_argument("--corpus-uri", required=True)
    parser.add_argument("--benchmark", required=True)
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--num-gpus", type=int, default=8)
    parser.add_argument("--num-nodes", type=int, default=1)
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], help="params override key=value"
    )
    args = parser.parse_args()
    setup_logging("INFO")

    package = compile_pipeline(args.package)
    client = kfp.Client(host=args.host, namespace=args.namespace)  # token from the kubeconfig / in-cluster SA
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
        namespace=args.namespace,
    )
    log.info("started run %s: %s/#/runs/details/%s", run.run_id, args.host, run.run_id)


if __name__ == "__main__":
    main()
