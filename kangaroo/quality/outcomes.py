"""Turn GX results into named outcomes with the worst offending rows (video ids) of each failed check."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from kangaroo.quality.gx_context import CheckResult
from kangaroo.quality.suite import DATASET_BATCH


@dataclass(frozen=True)
class Offender:
    """One row that broke a check: its id (the dataset `key`, else `video`), video path and the bad value."""

    row_id: str
    video: str | None
    value: object


@dataclass(frozen=True)
class CheckOutcome:
    """What the report says about one check."""

    name: str
    what: str
    expectation: str
    column: str | None
    success: bool
    observed: object
    unexpected_count: int | None
    offenders: list[Offender] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "what": self.what,
            "expectation": self.expectation,
            "column": self.column,
            "success": self.success,
            "observed": jsonable(self.observed),
            "unexpected_count": self.unexpected_count,
            "offenders": [
                {"id": o.row_id, "video": o.video, "value": jsonable(o.value)} for o in self.offenders
            ],
        }


def jsonable(value: object) -> object:
    """Plain JSON value for numpy scalars, NaN and containers."""
    if hasattr(value, "item") and not isinstance(value, list | dict | str):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _badness(value: object, kwargs: dict) -> float:
    """How far a value lies outside the check's bounds, so the worst rows are listed first."""
    if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
        return math.inf
    below = kwargs.get("min_value")
    above = kwargs.get("max_value")
    return max((below - value) if below is not None else 0.0, (value - above) if above is not None else 0.0)


def _offenders(item: CheckResult, features: pd.DataFrame, limit: int) -> list[Offender]:
    config = item.result.expectation_config
    column = config.kwargs.get("column")
    if item.check.offender_flag:
        flagged = features[features[item.check.offender_flag]]
        shown = item.check.offender_value
        if shown:
            # Biggest duplicate groups first: they cost the most training signal.
            sizes = flagged.groupby(shown)[shown].transform("size")
            flagged = flagged.assign(_size=sizes).sort_values("_size", ascending=False, kind="stable")
        return [
            Offender(row.row_id, row.video, getattr(row, shown) if shown else None)
            for row in flagged.head(limit).itertuples()
        ]
    rows = item.result.result.get("unexpected_index_list") or []
    found = [
        Offender(str(row.get("row_id")), row.get("video"), row.get(column) if column else None)
        for row in rows
        if isinstance(row, dict)
    ]
    found.sort(key=lambda o: -_badness(o.value, config.kwargs))
    return found[:limit]


def _observed(item: CheckResult, summary: pd.DataFrame) -> object:
    """GX's observed value; for the one-row dataset batch, the value itself; else the error GX raised."""
    details = item.result.result or {}
    if details.get("observed_value") is not None:
        return details["observed_value"]
    column = item.result.expectation_config.kwargs.get("column")
    if item.check.batch == DATASET_BATCH and column in summary:
        return summary[column].iloc[0]
    info = item.result.exception_info or {}
    # GX keeps one exception record, or one per metric that failed to compute.
    records = [info, *(v for v in info.values() if isinstance(v, dict))]
    raised = next((r["exception_message"] for r in records if r.get("exception_message")), None)
    return f"error: {raised}" if raised else None


def check_outcomes(
    results: list[CheckResult], features: pd.DataFrame, summary: pd.DataFrame, limit: int
) -> list[CheckOutcome]:
    """One outcome per check, in suite order; offenders only for failed checks."""
    outcomes = []
    for item in results:
        config = item.result.expectation_config
        details = item.result.result or {}
        outcomes.append(
            CheckOutcome(
                name=item.check.name,
                what=item.check.what,
                expectation=config.type,
                column=config.kwargs.get("column"),
                success=item.success,
                observed=_observed(item, summary),
                unexpected_count=details.get("unexpected_count"),
                offenders=[] if item.success else _offenders(item, features, limit),
            )
        )
    return outcomes
