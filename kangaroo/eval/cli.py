"""`kangaroo evaluate`: score a checkpoint on a multiple-choice video QA benchmark; `kangaroo
check-benchmark`: can the benchmark be answered without its videos?"""

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from kangaroo.cli_options import Overrides, ParamsFile, Profile, resolve_params


class Mode(StrEnum):
    both = "both"
    generation = "generation"
    likelihood = "likelihood"


def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="Saved model folder (config.json, weights, processor).")],
    benchmark: Annotated[
        str,
        typer.Option(
            "--benchmark",
            help="sample:DIR | mvbench:PATH | videomme:PATH | egoschema:PATH (PATH may be s3://).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for metrics.json and predictions.jsonl.")],
    split: Annotated[
        str | None,
        typer.Option("--split", help="Rows to keep: sample split (default eval) or Video-MME duration."),
    ] = None,
    mode: Annotated[Mode, typer.Option("--mode", help="Scoring modes to run.")] = Mode.both,
    limit: Annotated[int | None, typer.Option("--limit", help="Score only the first N questions.")] = None,
    lmms_eval_json: Annotated[
        bool, typer.Option("--lmms-eval-json", help="Also write results_lmms_eval.json (lmms-eval layout).")
    ] = False,
    temporal_control: Annotated[
        list[str] | None,
        typer.Option(
            "--temporal-control",
            help="Also score with the temporal signal perturbed (repeatable): shuffled_frames, "
            "reversed_frames, constant_timestamps, repeated_frame. Default: eval.temporal_controls.",
        ),
    ] = None,
    params_file: ParamsFile = None,
    profile: Profile = None,
    overrides: Overrides = None,
) -> None:
    """Score CHECKPOINT by generation and by option likelihood; write metrics.json and predictions.jsonl."""
    from kangaroo.eval.benchmarks import BenchmarkSpec
    from kangaroo.eval.runner import MODES, evaluate_checkpoint

    params = resolve_params(params_file, profile, overrides)
    if temporal_control is not None:
        params = params.model_copy(
            update={
                "eval": params.eval.model_validate(
                    {**params.eval.model_dump(), "temporal_controls": temporal_control}
                )
            }
        )
    modes = MODES if mode is Mode.both else (mode.value,)
    evaluate_checkpoint(
        checkpoint,
        BenchmarkSpec.parse(benchmark, split),
        out,
        params,
        modes,
        limit,
        lmms_eval_json,
        progress=True,
    )


def check_benchmark(
    benchmark: Annotated[
        str,
        typer.Option("--benchmark", help="sample:DIR | mvbench:PATH | videomme:PATH | egoschema:PATH."),
    ],
    split: Annotated[
        str | None, typer.Option("--split", help="Questions to check: sample split (default eval).")
    ] = None,
    fit_split: Annotated[
        str | None,
        typer.Option(
            "--fit-split",
            help="Sample split to fit the wording baseline on (e.g. train); default: two-fold on the checked "
            "questions.",
        ),
    ] = None,
    params_file: ParamsFile = None,
    profile: Profile = None,
    overrides: Overrides = None,
) -> None:
    """Print (JSON) how predictors that never see a video score: always one letter, longest/shortest option,
    and a wording baseline per category, each with its eval.chance_sigma chance band. Exit 1 if any is above
    its band."""
    import json
    import logging

    from kangaroo.eval.benchmarks import BenchmarkSpec, load_benchmark
    from kangaroo.eval.checks import blind_baseline_report

    params = resolve_params(params_file, profile, overrides)

    def load(which: str | None):
        spec = BenchmarkSpec.parse(benchmark, which)
        return load_benchmark(spec, params.eval.cache_dir, params.storage)

    questions = load(split or ("eval" if benchmark.startswith("sample:") else None))
    report = blind_baseline_report(
        questions, params.eval.chance_sigma, load(fit_split) if fit_split else None
    )
    typer.echo(json.dumps(report, indent=1))
    if report["leaks"]:
        logging.getLogger(__name__).error("%s: answerable without the video: %s", benchmark, report["leaks"])
        raise typer.Exit(1)
