"""`make run`: the whole pipeline on this machine with KFP's local runner, on the sample corpus.

The DAG, components and library code are the cluster's; only the runner (SubprocessRunner in this venv
instead of pods), the profile (tiny) and the input location differ.
"""

import argparse
import json
import logging
import os
import re
import sys
from collections import Counter
from pathlib import Path

from kangaroo.config import load_params
from kangaroo.errors import KangarooError
from kangaroo.logs import setup_logging

log = logging.getLogger("pipelines.run_local")

PIPELINE_NAME = "kangaroo-flow"


class LocalRunFailed(KangarooError):
    """A step of the local pipeline run failed."""


class TaskOutcomes(logging.Filter):
    """Which tasks of a local run executed and which the cache served, read from kfp.local's own log records
    (it logs both on the root logger); lets every record through."""

    EXECUTED = re.compile(r"Executing task (?:\x1b\[[0-9;]*m)?'([^']+)'")
    CACHED = re.compile(r"Task (\S+) cache hit")

    def __init__(self) -> None:
        super().__init__()
        self.ran: Counter[str] = Counter()
        self.cached: Counter[str] = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if executed := self.EXECUTED.search(message):
            self.ran[executed.group(1)] += 1
        elif cached := self.CACHED.search(message):
            self.cached[cached.group(1)] += 1
        return True

    def report(self) -> None:
        """One line: the tasks that ran (by name, a count for fanned-out ones) and how many were cached."""
        ran = ", ".join(f"{name} x{n}" if n > 1 else name for name, n in sorted(self.ran.items())) or "none"
        log.info(
            "re-ran: %s; from cache: %d tasks",
            ran,
            sum(self.cached.values()),
            extra={"ran": sorted(self.ran), "cached": sorted(self.cached)},
        )


def ensure_sample_corpus(corpus_dir: Path, params) -> Path:
    """Write the sample corpus once per synth settings; a later run with the same settings reuses it."""
    from kangaroo.synth.corpus import write_corpus

    stamp = corpus_dir / ".synth-settings.json"
    wanted = params.synth.model_dump_json()
    if stamp.is_file() and stamp.read_text() == wanted:
        log.info("reusing sample corpus in %s", corpus_dir)
        return corpus_dir
    write_corpus(corpus_dir, params.synth)
    stamp.write_text(wanted)
    return corpus_dir


def latest_run_dir(pipeline_root: Path) -> Path | None:
    runs = sorted(pipeline_root.glob(f"{PIPELINE_NAME}-*"), key=lambda p: p.stat().st_mtime)
    return runs[-1] if runs else None


def report_outputs(run_dir: Path) -> dict[str, str]:
    """Where a person finds the quality report, the model and the metrics of the run.

    Cached steps left their outputs in the run that computed them; the uncached `list-run-outputs` step
    records where they are. Without it (the run stopped earlier) the run's own folder is searched.
    """
    wanted = {
        "quality report (HTML)": "quality-gate/report",
        "quality summary": "quality-gate/summary",
        "model": "register-model/registered",
        "evaluation metrics": "model-evaluation/results/metrics.json",
        "predictions": "model-evaluation/results/predictions.jsonl",
        "run summary": "publish-run-summary/run_summary",
    }
    found = {label: str(run_dir / rel) for label, rel in wanted.items() if (run_dir / rel).exists()}
    return {**found, **listed_run_outputs(run_dir)}


def listed_run_outputs(run_dir: Path) -> dict[str, str]:
    """The locations the `list-run-outputs` step recorded in its artifact's metadata (KFP executor output)."""
    executor_output = run_dir / "list-run-outputs" / "executor_output.json"
    if not executor_output.is_file():
        return {}
    artifacts = json.loads(executor_output.read_text()).get("artifacts", {})
    listed = artifacts.get("run_outputs", {}).get("artifacts", [{}])[0].get("metadata", {})
    listed = {label: str(location) for label, location in listed.items() if Path(str(location)).exists()}
    table = run_dir / "list-run-outputs" / "run_outputs"
    return {**listed, "run outputs": str(table)} if table.exists() else listed


def run_local(work: Path, profile: str, overrides: list[str]) -> dict[str, str]:
    from kfp import local

    from components.image import project_params_text
    from pipelines import local_loop_inputs, local_oneof
    from pipelines.kangaroo_pipeline import kangaroo_pipeline

    local_oneof.install()  # each stage's model comes from whichever placement branch ran (dsl.OneOf)
    local_loop_inputs.install()  # each curation shard task gets its config, not the shard index

    work = work.resolve()
    params = load_params(profile=profile, overrides=overrides)
    corpus = ensure_sample_corpus(work / "corpus", params)
    pipeline_root = work / "pipeline_root"
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(work / "tmp")  # the local runner leaves temp folders per task

    # Caching: a second run with nothing changed reuses every step's outputs (keys = inputs + command).
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        enable_caching=True,
        cache_root=str(work / "kfp_cache"),
    )
    failure = None
    outcomes = TaskOutcomes()
    logging.getLogger().addFilter(outcomes)  # kfp.local swaps the root logger's handlers, not its filters
    try:
        kangaroo_pipeline(
            input_uri=str(corpus / "videos"),
            corpus_uri=str(corpus),
            benchmark=f"sample:{corpus}",
            profile=profile,
            params_yaml=project_params_text(),
            overrides=overrides,
            checkpoint_root=str(work / "checkpoints"),
        )
    except RuntimeError as err:  # kfp.local raises when a task failed (e.g. the quality gate stopped the run)
        failure = err
    finally:
        logging.getLogger().removeFilter(outcomes)
    outcomes.report()
    run_dir = latest_run_dir(pipeline_root)
    outputs = report_outputs(run_dir) if run_dir else {}
    for label, path in outputs.items():
        log.info("%-22s %s", label, path)
    if failure is not None:
        raise LocalRunFailed(f"{failure}; outputs of the run so far are listed above") from failure
    metrics = outputs.get("evaluation metrics")
    if metrics:
        scores = json.loads(Path(metrics).read_text())
        log.info(
            "accuracy %.3f (chance %.3f) on %d questions",
            scores["accuracy"],
            scores["chance"],
            scores["num_questions"],
        )
    return outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, default=Path("work"))
    parser.add_argument("--profile", default="tiny")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], help="params override key=value"
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    setup_logging(args.log_level)
    try:
        run_local(args.work, args.profile, args.overrides)
    except KangarooError as err:
        log.error("%s", err)
        sys.exit(1)


if __name__ == "__main__":
    main()
