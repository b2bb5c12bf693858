"""`make compile`: write the pipeline's IR YAML (what the Kubeflow UI uploads)."""

import argparse
import logging
from pathlib import Path

from kfp import compiler

from kangaroo.logs import setup_logging
from pipelines.kangaroo_pipeline import kangaroo_pipeline

log = logging.getLogger("pipelines.compile")


def compile_pipeline(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline_func=kangaroo_pipeline, package_path=str(out))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("build/kangaroo_pipeline.yaml"))
    args = parser.parse_args()
    setup_logging("INFO")
    log.info("compiled pipeline to %s", compile_pipeline(args.out))


if __name__ == "__main__":
    main()
