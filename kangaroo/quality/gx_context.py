"""One ephemeral GX context per set of settings: data sources, suites, validation definitions, checkpoints.

Building it costs most of a gate run's GX time, so `GateContext` is built once and reused for every
dataset; each run points the report's Data Docs site at its own folder.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import great_expectations as gx
import pandas as pd
from great_expectations.core import ExpectationValidationResult
from great_expectations.data_context.types.base import ProgressBarsConfig

from kangaroo.quality.settings import QualitySettings
from kangaroo.quality.suite import CAPTIONS_BATCH, DATASET_BATCH, Check, build_checks

log = logging.getLogger(__name__)

# The ephemeral context already owns a site named `local_site`; the gate's site lives beside it.
DOCS_SITE = "kangaroo_quality"
ID_COLUMNS = ["row_id", "video"]


@dataclass(frozen=True)
class CheckResult:
    """A check and the GX result it produced in one run."""

    check: Check
    result: ExpectationValidationResult

    @property
    def success(self) -> bool:
        return bool(self.result.success)


class GateContext:
    """GX objects of the gate, built once from the settings."""

    def __init__(self, settings: QualitySettings, alignment: bool = False) -> None:
        self.settings = settings
        self.checks = build_checks(settings, alignment)
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        source = self.context.data_sources.add_pandas("kangaroo_dataset")
        self.checkpoints = {}
        for batch in (CAPTIONS_BATCH, DATASET_BATCH):
            batch_definition = source.add_dataframe_asset(batch).add_batch_definition_whole_dataframe(batch)
            suite = self.context.suites.add(gx.ExpectationSuite(name=f"kangaroo_{batch}"))
            for check in self.checks:
                if check.batch == batch:
                    suite.add_expectation(check.expectation)
            validation = self.context.validation_definitions.add(
                gx.ValidationDefinition(name=f"kangaroo_{batch}", data=batch_definition, suite=suite)
            )
            result_format = {"result_format": "COMPLETE"}
            if batch == CAPTIONS_BATCH:
                result_format["unexpected_index_column_names"] = ID_COLUMNS
            self.checkpoints[batch] = self.context.checkpoints.add(
                gx.Checkpoint(
                    name=f"kangaroo_{batch}_gate",
                    validation_definitions=[validation],
                    actions=[
                        gx.checkpoint.UpdateDataDocsAction(name="update_report", site_names=[DOCS_SITE])
                    ],
                    result_format=result_format,
                )
            )

    def _point_docs_site_at(self, docs_dir: Path) -> None:
        if DOCS_SITE in (self.context.variables.data_docs_sites or {}):
            self.context.delete_data_docs_site(DOCS_SITE)
        self.context.add_data_docs_site(
            DOCS_SITE,
            {
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )

    def run(self, captions: pd.DataFrame, summary: pd.DataFrame, docs_dir: Path) -> list[CheckResult]:
        """Validate both batches, write the Data Docs site under docs_dir, return one result per check."""
        # A rerun into the same report folder must not list the previous run's validation pages.
        shutil.rmtree(docs_dir, ignore_errors=True)
        self._point_docs_site_at(docs_dir.resolve())
        by_name: dict[str, ExpectationValidationResult] = {}
        for batch, frame in ((CAPTIONS_BATCH, captions), (DATASET_BATCH, summary)):
            outcome = self.checkpoints[batch].run(batch_parameters={"dataframe": frame})
            for suite_result in outcome.run_results.values():
                for result in suite_result.results:
                    by_name[result.expectation_config.meta["check"]] = result
        return [CheckResult(check, by_name[check.name]) for check in self.checks]

    def docs_index(self) -> Path:
        """The Data Docs site's entry page of the last run."""
        (site,) = self.context.get_docs_sites_urls(site_name=DOCS_SITE)
        return Path(site["site_url"].removeprefix("file://"))
