"""`evaluate_checkpoint()`: score one checkpoint on one benchmark in both modes and write the results.

Outputs in `out_dir`:

- ``metrics.json``: headline ``accuracy`` (mode = ``eval.headline_mode``), ``chance``, ``per_category``,
  ``num_questions``, then ``generation`` / ``likelihood`` blocks (accuracy, per-category, per-task, confusion,
  parse-failure rate, predicted-letter counts), ``long_video`` (the timestamp probes), ``frames``,
  ``tokens`` and ``run`` (checkpoint, benchmark, frames, decoder backend, prompt template, code version).
- ``predictions.jsonl``: one lmms-eval-like row per question (doc_id, input, target, responses,
  filtered_resps, metric, plus both modes' details) so two runs can be compared question by question.
- ``results_lmms_eval.json`` (optional): the same numbers in lmms-eval's results layout.
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

import kangaroo
from kangaroo.eval.benchmarks import LETTERS, BenchmarkSpec, MCQuestion, load_benchmark
from kangaroo.eval.checks import chance_report
from kangaroo.eval.controls import control_summary, controlled_sampler
from kangaroo.eval.letters import extract_letter
from kangaroo.eval.metrics import mode_metrics, subset_metrics
from kangaroo.eval.prompts import TEMPLATES, build_prompt, option_continuations, template_for
from kangaroo.eval.scoring import PreparedQuestion, generate_answers, rank_options, score_options
from kangaroo.eval.settings import EvalSettings

logger = logging.getLogger(__name__)
MODES = ("generation", "likelihood")


@dataclass
class EvalResult:
    """What one evaluation produced; plain dicts so the KFP component can turn them into its metric types."""

    metrics: dict[str, Any]
    predictions: list[dict[str, Any]]
    out_dir: Path | None = None
    files: dict[str, str] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return float(self.metrics["accuracy"])

    @property
    def chance(self) -> float:
        return float(self.metrics["chance"])

    @property
    def confusion(self) -> dict[str, Any]:
        """Headline mode's confusion: {"labels": [...], "matrix": [[gold x predicted counts]]}."""
        return self.metrics[self.metrics["headline_mode"]]["confusion"]

    @property
    def confusion_labels(self) -> list[str]:
        """Letters plus "none" (parse failure): the categories of KFP's ClassificationMetrics."""
        return list(self.confusion["labels"])

    @property
    def confusion_matrix(self) -> list[list[int]]:
        """Square gold x predicted counts (KFP needs a square matrix: the gold "none" row is all zeros)."""
        rows = [list(row) for row in self.confusion["matrix"]]
        return rows + [[0] * len(self.confusion_labels)]

    def flat_metrics(self) -> dict[str, float]:
        """Scalar metrics for KFP's Metrics artifact: headline, both modes, categories, long-video probes."""
        metrics = self.metrics
        flat = {
            "accuracy": metrics["accuracy"],
            "chance": metrics["chance"],
            "num_questions": float(metrics["num_questions"]),
            "num_video_errors": float(metrics["num_video_errors"]),
            "mean_frames": metrics["frames"]["mean"],
        }
        for mode in MODES:
            if mode not in metrics:
                continue
            flat[f"{mode}_accuracy"] = metrics[mode]["accuracy"]
            for category, entry in metrics[mode]["per_category"].items():
                flat[f"{mode}_accuracy_{category}"] = entry["accuracy"]
        if "generation" in metrics:
            flat["parse_failure_rate"] = metrics["generation"]["parse_failure_rate"]
        for control, block in (metrics.get("temporal_controls") or {}).items():
            flat[f"{control}_accuracy"] = block["accuracy"]
            for category, entry in block["per_category"].items():
                flat[f"{control}_accuracy_{category}"] = entry["accuracy"]
        for mode, block in (metrics.get("long_video") or {}).items():
            if isinstance(block, dict):
                flat[f"long_video_{mode}_accuracy"] = block["accuracy"]
        return {name: float(value) for name, value in flat.items()}


def code_version() -> str:
    """Package version plus the git commit of the source tree it runs from (when there is one)."""
    root = Path(kangaroo.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{kangaroo.__version__}+{commit}" if commit else kangaroo.__version__


def _batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), max(1, size))]


def prepare_questions(
    questions: Sequence[MCQuestion],
    sample_frames: Callable[[MCQuestion], Any],
    template: str = "mvbench",
    progress: bool = True,
) -> tuple[list[PreparedQuestion], dict[str, str]]:
    """Frames + prompt per question; questions whose video cannot be decoded are returned as errors."""
    from kangaroo.video.errors import VideoError

    prepared, errors = [], {}
    for question in tqdm(questions, desc="decode frames", unit="q", disable=not progress):
        try:
            frames = sample_frames(question)
        except VideoError as err:
            logger.warning("%s: %s", question.question_id, err)
            errors[question.question_id] = str(err)
            continue
        prepared.append(
            PreparedQuestion(question=question, frames=frames, prompt=build_prompt(question, template))
        )
    return prepared, errors


def evaluate_model(
    model: Any,
    processor: Any,
    questions: Sequence[MCQuestion],
    settings: EvalSettings,
    sample_frames: Callable[[MCQuestion], Any],
    image_size: int,
    modes: Sequence[str] = MODES,
    run_info: dict[str, Any] | None = None,
    progress: bool = True,
    template: str = "mvbench",
) -> EvalResult:
    """Score `questions` with an in-memory model; every question counts (undecodable ones as wrong).

    `template` names the prompt wording (kangaroo.eval.prompts.TEMPLATES).
    """
    unknown = set(modes) - set(MODES)
    if unknown or not modes:
        raise ValueError(f"modes must be a non-empty subset of {MODES}, got {list(modes)}")
    model.eval()
    rows: dict[str, dict[str, Any]] = {}
    video_errors: dict[str, str] = {}
    # Decode one batch at a time: a benchmark's frames never sit in memory all at once (64-frame 448 px
    # clips are ~40 MB per question).
    for batch_questions in tqdm(
        _batches(questions, settings.batch_size), desc="evaluate", unit="batch", disable=not progress
    ):
        batch, errors = prepare_questions(batch_questions, sample_frames, template, progress=False)
        video_errors.update(errors)
        if batch:
            rows.update(_score_batch(model, processor, batch, settings, image_size, modes))

    predictions = [
        _prediction_row(i, q, rows.get(q.question_id), video_errors, modes, template)
        for i, q in enumerate(questions)
    ]
    run_info = {**(run_info or {}), "prompt_template_name": template}
    metrics = summarise(questions, predictions, settings, modes, video_errors, run_info)
    metrics["temporal_controls"] = temporal_controls(
        model, processor, questions, settings, sample_frames, image_size, modes, progress, template
    )
    return EvalResult(metrics=metrics, predictions=predictions)


def temporal_controls(
    model: Any,
    processor: Any,
    questions: Sequence[MCQuestion],
    settings: EvalSettings,
    sample_frames: Callable[[MCQuestion], Any],
    image_size: int,
    modes: Sequence[str],
    progress: bool,
    template: str,
) -> dict[str, Any] | None:
    """Each of `settings.temporal_controls` scored in the headline mode (likelihood when it was run):
    {control: {mode, accuracy, chance, num_questions, per_category, categories_at_chance}}, or None."""
    if not settings.temporal_controls:
        return None
    mode = settings.headline_mode if settings.headline_mode in modes else modes[0]
    plain = settings.model_copy(update={"temporal_controls": []})
    results = {}
    for control in settings.temporal_controls:
        logger.info("temporal control %s: scoring %d questions again", control, len(questions))
        controlled = evaluate_model(
            model, processor, questions, plain, controlled_sampler(sample_frames, control), image_size,
            (mode,), None, progress, template,
        )  # fmt: skip
        report = chance_report(
            controlled.metrics, settings.chance_sigma, settings.min_ratio_over_chance, mode
        )
        results[control] = {
            "mode": mode,
            **control_summary(controlled.metrics[mode], report["categories_at_chance"]),
        }
    return results


def _score_batch(
    model: Any,
    processor: Any,
    batch: Sequence[PreparedQuestion],
    settings: EvalSettings,
    image_size: int,
    modes: Sequence[str],
) -> dict[str, dict[str, Any]]:
    """Both modes on one batch of prepared questions -> per-question result fields."""
    rows = {
        item.question.question_id: {
            "input": item.prompt,
            "num_frames": item.num_frames,
            "frame_timestamps": [round(float(t), 3) for t in item.frames.timestamps],
            "decoder": str(getattr(item.frames, "backend", "")),
        }
        for item in batch
    }
    if "generation" in modes:
        outputs = generate_answers(model, processor, batch, image_size, settings.max_new_tokens)
        for item, output in zip(batch, outputs, strict=True):
            rows[item.question.question_id].update(
                response=output.text,
                generation=extract_letter(output.text, item.question.num_options),
                num_input_tokens=output.num_input_tokens,
                num_new_tokens=output.num_new_tokens,
            )
    if "likelihood" in modes:
        continuations = [
            option_continuations(item.question, settings.likelihood_continuation) for item in batch
        ]
        scores = score_options(model, processor, batch, continuations, image_size)
        other = "sum" if settings.likelihood_normalisation == "mean" else "mean"
        for item, option_scores in zip(batch, scores, strict=True):
            rows[item.question.question_id].update(
                option_logprobs=[round(s.sum_logprob, 4) for s in option_scores],
                option_tokens=[s.num_tokens for s in option_scores],
                likelihood=LETTERS[rank_options(option_scores, settings.likelihood_normalisation)],
                likelihood_alternate=LETTERS[rank_options(option_scores, other)],
            )
    return rows


def _prediction_row(
    doc_id: int,
    question: MCQuestion,
    row: dict[str, Any] | None,
    video_errors: dict[str, str],
    modes: Sequence[str],
    template: str = "mvbench",
) -> dict[str, Any]:
    row = row or {}
    generated = row.get("generation")
    likelihood = row.get("likelihood")
    record: dict[str, Any] = {
        "doc_id": doc_id,
        "question_id": question.question_id,
        "category": question.category,
        "task": question.task,
        "video": question.video,
        "start": question.start,
        "end": question.end,
        "input": row.get("input") or build_prompt(question, template),
        "target": question.answer,
        "options": list(question.options),
        "num_frames": row.get("num_frames", 0),
        "frame_timestamps": row.get("frame_timestamps", []),
        "decoder": row.get("decoder"),
        "video_error": video_errors.get(question.question_id),
        "metric": {},
    }
    if "generation" in modes:
        record["responses"] = [row.get("response", "")]
        record["filtered_resps"] = [generated or ""]
        record["num_input_tokens"] = row.get("num_input_tokens", 0)
        record["metric"]["generation_accuracy"] = float(
            generated is not None and generated == question.answer
        )
    if "likelihood" in modes:
        record["likelihood"] = {
            "prediction": likelihood,
            "prediction_alternate_normalisation": row.get("likelihood_alternate"),
            "option_logprobs": row.get("option_logprobs", []),
            "option_tokens": row.get("option_tokens", []),
        }
        record["metric"]["likelihood_accuracy"] = float(
            likelihood is not None and likelihood == question.answer
        )
    return record


def summarise(
    questions: Sequence[MCQuestion],
    predictions: Sequence[dict[str, Any]],
    settings: EvalSettings,
    modes: Sequence[str],
    video_errors: dict[str, str],
    run_info: dict[str, Any],
) -> dict[str, Any]:
    """metrics.json: headline keys first, then one block per mode, long-video probes, frames and tokens."""
    per_mode: dict[str, dict[str, Any]] = {}
    predicted: dict[str, list[str | None]] = {}
    if "generation" in modes:
        predicted["generation"] = [p["filtered_resps"][0] or None for p in predictions]
    if "likelihood" in modes:
        predicted["likelihood"] = [p["likelihood"]["prediction"] for p in predictions]
    for mode, letters in predicted.items():
        per_mode[mode] = mode_metrics(questions, letters)
    if "likelihood" in modes:
        alternate = [p["likelihood"]["prediction_alternate_normalisation"] for p in predictions]
        other = "sum" if settings.likelihood_normalisation == "mean" else "mean"
        per_mode["likelihood"]["normalisation"] = settings.likelihood_normalisation
        per_mode["likelihood"]["continuation"] = settings.likelihood_continuation
        alt = mode_metrics(questions, alternate)
        per_mode["likelihood"]["alternate"] = {
            "normalisation": other,
            "accuracy": alt["accuracy"],
            "per_category": alt["per_category"],
        }
    if "generation" in modes:
        new_tokens = [p.get("num_input_tokens", 0) for p in predictions]
        per_mode["generation"]["max_new_tokens"] = settings.max_new_tokens
        per_mode["generation"]["mean_input_tokens"] = sum(new_tokens) / max(len(new_tokens), 1)

    for block in per_mode.values():
        # ratio over chance, the guessing band, and which categories a guesser would match
        report = chance_report(block, settings.chance_sigma, settings.min_ratio_over_chance)
        block["vs_chance"] = {k: v for k, v in report.items() if k not in ("per_category", "mode")}
    headline = settings.headline_mode if settings.headline_mode in per_mode else next(iter(per_mode))
    main = per_mode[headline]
    long_video = {
        mode: subset_metrics(questions, letters, settings.long_video_category)
        for mode, letters in predicted.items()
    }
    frames = [p["num_frames"] for p in predictions if not p["video_error"]]
    return {
        "accuracy": main["accuracy"],
        "chance": main["chance"],
        "per_category": main["per_category"],
        "num_questions": len(questions),
        "headline_mode": headline,
        "parse_failure_rate": per_mode.get("generation", {}).get("parse_failure_rate"),
        "num_video_errors": len(video_errors),
        **per_mode,
        "long_video": None
        if all(v is None for v in long_video.values())
        else {
            "category": settings.long_video_category,
            **{mode: block for mode, block in long_video.items() if block is not None},
        },
        "frames": {
            "num_frames_setting": settings.num_frames,
            "max_fps": settings.max_fps,
            "mean": sum(frames) / len(frames) if frames else 0.0,
            "min": min(frames, default=0),
            "max": max(frames, default=0),
            "decoders_used": dict(Counter(p.get("decoder") for p in predictions if p.get("decoder"))),
        },
        "run": {
            **run_info,
            "prompt_template": TEMPLATES[run_info.get("prompt_template_name", "mvbench")],
            "likelihood_normalisation": settings.likelihood_normalisation,
            "likelihood_continuation": settings.likelihood_continuation,
            "max_new_tokens": settings.max_new_tokens,
            "batch_size": settings.batch_size,
            "code_version": code_version(),
        },
    }


def write_outputs(result: EvalResult, out_dir: Path, lmms_eval_json: bool = False) -> EvalResult:
    """metrics.json, predictions.jsonl and optionally results_lmms_eval.json under `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / "metrics.json"
    metrics_path.write_text(json.dumps(result.metrics, indent=2) + "\n")
    predictions_path = out_dir / "predictions.jsonl"
    predictions_path.write_text("".join(json.dumps(row) + "\n" for row in result.predictions))
    result.out_dir = out_dir
    result.files = {"metrics": str(metrics_path), "predictions": str(predictions_path)}
    if lmms_eval_json:
        from kangaroo.eval.lmms_format import lmms_eval_results

        path = out_dir / "results_lmms_eval.json"
        path.write_text(json.dumps(lmms_eval_results(result.metrics), indent=2) + "\n")
        result.files["lmms_eval"] = str(path)
    return result


def evaluate_checkpoint(
    checkpoint_dir: str | Path,
    benchmark_spec: str | BenchmarkSpec,
    out_dir: str | Path,
    params: Any,
    modes: Sequence[str] = MODES,
    limit: int | None = None,
    lmms_eval_json: bool = False,
    progress: bool = True,
) -> EvalResult:
    """Load a saved checkpoint, score it on a benchmark (`sample:DIR`, `mvbench:PATH`, ...), write the files.

    `params` is the loaded `Params` (its `eval`, `video` and `storage` blocks are used). The sample
    benchmark defaults to its held-out `eval` split.
    """
    from kangaroo.eval.frames import FrameSampler
    from kangaroo.model.build import load_model_and_processor

    spec = BenchmarkSpec.parse(benchmark_spec) if isinstance(benchmark_spec, str) else benchmark_spec
    if spec.kind == "sample" and spec.split is None:
        spec = BenchmarkSpec(spec.kind, spec.location, "eval")
    settings: EvalSettings = params.eval
    questions = load_benchmark(spec, settings.cache_dir, params.storage)
    if limit is not None:
        questions = questions[:limit]
    if spec.kind == "sample" and not any(q.category == settings.long_video_category for q in questions):
        logger.warning(
            "%s (split %s): no %r long-video probes among the questions; long_video will be null",
            spec.location,
            spec.split,
            settings.long_video_category,
        )
    model, processor = load_model_and_processor(checkpoint_dir)
    image_size = settings.frame_size or processor.image_size
    sampler = FrameSampler(params.video, settings.num_frames, settings.max_fps, image_size)
    run_info = {
        "checkpoint": str(checkpoint_dir),
        "benchmark": spec.kind,
        "benchmark_location": spec.location,
        "split": spec.split,
        "limit": limit,
        "profile": getattr(params, "profile", None),
        "image_size": image_size,
        "decoder_backend": params.video.backend,
        "resize_policy": params.video.resize_policy,
    }
    template = template_for(spec.kind, settings.prompt_template)
    result = evaluate_model(
        model, processor, questions, settings, sampler, image_size, modes, run_info, progress, template
    )
    result.metrics["tokens"] = {
        "visual_tokens_per_question_max": processor.num_visual_tokens(
            settings.num_frames, image_size, image_size
        ),
    }
    logger.info(
        "%s on %s: %s accuracy %.3f (chance %.3f) over %d questions",
        checkpoint_dir,
        spec.kind,
        result.metrics["headline_mode"],
        result.accuracy,
        result.chance,
        result.metrics["num_questions"],
    )
    return write_outputs(result, Path(out_dir), lmms_eval_json)
