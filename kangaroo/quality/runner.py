"""`run_quality_gate`: the one entry point the CLI, the KFP component and `dvc repro` call."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kangaroo.quality.dataset import load_captioned_dataset
from kangaroo.quality.features import caption_features, dataset_summary, rejection_counts
from kangaroo.quality.gx_context import GateContext
from kangaroo.quality.language import language_features
from kangaroo.quality.outcomes import CheckOutcome, check_outcomes
from kangaroo.quality.plots import (
    alignment_histogram,
    caption_length_histogram,
    data_uri,
    rejection_bar_chart,
)
from kangaroo.quality.report import write_index_html, write_result_json, write_summary_md
from kangaroo.quality.review import review_sections
from kangaroo.quality.settings import QualitySettings

log = logging.getLogger(__name__)

DOCS_SUBDIR = "gx_data_docs"
_contexts: dict[str, GateContext] = {}


@dataclass(frozen=True)
class GateResult:
    """Verdict of the gate and where its report went."""

    success: bool
    failed_expectations: list[str]
    html_path: Path
    markdown_path: Path
    json_path: Path
    docs_site_index: Path
    outcomes: list[CheckOutcome] = field(default_factory=list)


def gate_context(settings: QualitySettings, alignment: bool = False) -> GateContext:
    """The GX context for these settings, built on first use and reused after (building is the slow part)."""
    cache_key = f"{settings.model_dump_json()}|alignment={alignment}"
    if cache_key not in _contexts:
        _contexts[cache_key] = GateContext(settings, alignment)
    return _contexts[cache_key]


def run_quality_gate(
    dataset_dir: str | Path,
    report_dir: str | Path,
    settings: QualitySettings,
    alignment_model: str | Path | None = None,
    params=None,
) -> GateResult:
    """Validate a captioned dataset folder and write index.html, summary.md, result.json under report_dir.

    `alignment_model`: the folder (or hub id) of the model captioning scored with; the caption-video
    alignment checks run only with it. `params` (a Params) gives the video and storage settings the
    report's frame strips are read with (defaults otherwise).

    Never raises on bad captions: the verdict is in `GateResult.success`. Raises DatasetError when the
    folder or its JSONL files cannot be read.
    """
    from kangaroo.curation.alignment import load_alignment

    started = time.perf_counter()
    dataset_dir, report_dir = Path(dataset_dir), Path(report_dir)
    dataset = load_captioned_dataset(dataset_dir)
    features = caption_features(dataset.rows)
    language = language_features(
        features["caption"], settings.language_candidates, settings.language_min_relative_distance
    )
    parts = [features, language]
    scorer = load_alignment(alignment_model) if alignment_model is not None else None
    if scorer is not None:
        from kangaroo.quality.alignment import alignment_features

        parts.append(
            alignment_features(dataset.rows, scorer, settings.alignment_others, settings.alignment_seed)
        )
    features = pd.concat([part.reset_index(drop=True) for part in parts], axis=1)
    summary = dataset_summary(dataset.ledger, features, dataset.caption_failures)
    report_dir.mkdir(parents=True, exist_ok=True)

    context = gate_context(settings, alignment=scorer is not None)
    results = context.run(features, summary, report_dir / DOCS_SUBDIR)
    outcomes = check_outcomes(results, features, summary, settings.worst_offenders)
    success = all(o.success for o in outcomes)
    failed = [o.name for o in outcomes if not o.success]

    rejections = rejection_counts(dataset.ledger)
    statistics = {
        **summary.to_dict("records")[0],
        "caption_words_mean": features["caption_words"].mean(),
        "caption_words_median": features["caption_words"].median(),
        "rejections_by_filter": rejections.to_dict(),
        "checks_evaluated": len(outcomes),
        "checks_failed": len(failed),
        "caption_languages": features["caption_language"].value_counts().to_dict(),
        "alignment_model": scorer.name if scorer is not None else None,
    }
    if scorer is not None:
        margins = features["alignment_margin"].dropna()
        statistics.update(
            alignment_score_median=features["alignment_score"].median(),
            alignment_other_score_median=features["alignment_other_score"].median(),
            alignment_margin_median=margins.median(),
            alignment_negative_margin_fraction=float((margins < 0).mean()) if len(margins) else None,
        )
    plots = {
        "Caption length histogram": data_uri(
            caption_length_histogram(
                features["caption_words"], settings.min_caption_words, settings.max_caption_words
            )
        ),
        "Rejections per curation filter": data_uri(
            rejection_bar_chart(rejections, int(summary.iloc[0]["ledger_kept"]))
        ),
    }
    if scorer is not None:
        plots["Caption-video alignment"] = data_uri(
            alignment_histogram(features["alignment_score"], features["alignment_other_score"])
        )
    review = review_sections(dataset_dir, features, dataset.ledger, settings, params)
    paths = {name: report_dir / name for name in ("index.html", "summary.md", "result.json")}
    docs_index = context.docs_index()
    write_index_html(
        paths["index.html"], dataset_dir, success, outcomes, statistics, plots, docs_index, review
    )
    write_summary_md(paths["summary.md"], dataset_dir, success, outcomes, statistics)
    write_result_json(paths["result.json"], success, outcomes, statistics)
    log.info(
        "quality gate %s on %s (%d rows) in %.2f s; report %s",
        "passed" if success else f"FAILED ({', '.join(failed)})",
        dataset_dir,
        len(features),
        time.perf_counter() - started,
        paths["index.html"],
    )
    return GateResult(
        success=success,
        failed_expectations=failed,
        html_path=paths["index.html"],
        markdown_path=paths["summary.md"],
        json_path=paths["result.json"],
        docs_site_index=docs_index,
        outcomes=outcomes,
    )
