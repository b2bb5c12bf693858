"""The gate's report files: `summary.md`, `result.json` and `index.html` (plots + links into GX Data Docs)."""

from __future__ import annotations

import html
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from kangaroo.quality.outcomes import CheckOutcome, jsonable

if TYPE_CHECKING:
    from kangaroo.quality.review import ReviewSection
    from kangaroo.quality.runner import GateResult


def _short(value: object, width: int = 80) -> str:
    text = repr(value) if isinstance(value, str) else json.dumps(jsonable(value))
    return text if len(text) <= width else text[: width - 1] + "…"


def _md_cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def write_result_json(path: Path, success: bool, outcomes: list[CheckOutcome], statistics: dict) -> None:
    """`{"success", "failed_expectations", "failed", "statistics", "checks"}` (docs/data-formats.md)."""
    failed = [o.name for o in outcomes if not o.success]
    payload = {
        "success": success,
        "failed_expectations": failed,
        "failed": failed,
        "statistics": jsonable(statistics),
        "checks": [o.as_dict() for o in outcomes],
    }
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_summary_md(
    path: Path, dataset_dir: Path, success: bool, outcomes: list[CheckOutcome], statistics: dict
) -> None:
    """Pass/fail per expectation, then the worst offending rows of each failed one."""
    failed = [o for o in outcomes if not o.success]
    lines = [
        f"# Caption quality gate: {'PASSED' if success else 'FAILED'}",
        "",
        f"Dataset `{dataset_dir}`: {statistics['dataset_rows']} captioned videos, "
        f"{statistics['ledger_kept']}/{statistics['ledger_rows']} curation inputs kept.",
        "",
        "| check | result | expectation | observed | unexpected |",
        "|---|---|---|---|---|",
    ]
    for o in outcomes:
        observed = _short(o.observed, 40) if o.observed is not None else ""
        unexpected = "" if o.unexpected_count is None else str(o.unexpected_count)
        lines.append(
            f"| `{o.name}` | {'pass' if o.success else '**FAIL**'} | {_md_cell(o.what)} | "
            f"{_md_cell(observed)} | {unexpected} |"
        )
    for o in failed:
        lines += ["", f"## `{o.name}` failed: {o.what}", ""]
        if not o.offenders:
            lines.append(f"Observed: `{_short(o.observed)}` (a dataset-level value, no single row to blame).")
            continue
        lines += ["| id | video | value |", "|---|---|---|"]
        lines += [f"| `{x.row_id}` | `{x.video}` | {_md_cell(_short(x.value))} |" for x in o.offenders]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:75em;color:#222}
.banner{padding:.6em 1em;border-radius:6px;font-size:1.4em;color:#fff}
.pass{background:#2e7d32}.fail{background:#c62828}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;
vertical-align:top}th{background:#f3f3f3}tr.failed td:first-child{color:#c62828;font-weight:bold}
code{font-size:.95em}.plots img{margin-right:1em;border:1px solid #ddd}
iframe{width:100%;height:50em;border:1px solid #ccc}details{margin:.5em 0}summary{cursor:pointer}
table.review td{max-width:34em}table.review img{display:block;max-width:none}.noframes{color:#c62828}
.detail{color:#555;font-size:.9em;min-width:14em}
"""


def _review_html(sections: list[ReviewSection]) -> str:
    """One table per section: frame strip, id, caption (or rejection error) and the row's scores."""
    e = html.escape
    blocks = []
    for section in sections:
        body = []
        for row in section.rows:
            strip = (
                f'<img alt="frames of {e(row.key)}" src="{row.strip.uri}">'
                if row.strip.uri
                else f'<span class="noframes">no frames: {e(row.strip.error or "")}</span>'
            )
            details = "<br>".join(
                f"{e(str(k))}: <code>{e(_short(v, 60))}</code>"
                for k, v in row.details.items()
                if v is not None
            )
            body.append(
                f"<tr><td>{strip}</td><td><code>{e(row.key)}</code></td><td>{e(row.text)}</td>"
                f'<td class="detail">{details}</td></tr>'
            )
        blocks.append(
            f"<h3>{e(section.title)}</h3><p>{e(section.note)}</p>"
            '<table class="review"><tr><th>frames</th><th>id</th><th>caption / error</th>'
            f"<th>scores</th></tr>"
            f"{''.join(body)}</table>"
        )
    return "".join(blocks)


def _embedded_validation_pages(docs_index: Path) -> str:
    """Each GX validation page inlined as an iframe `srcdoc` (GX styles come from CDNs, not the folder)."""
    pages = sorted(docs_index.parent.glob("validations/**/*.html"))
    blocks = []
    for number, page in enumerate(pages):
        suite = page.relative_to(docs_index.parent / "validations").parts[0]
        blocks.append(
            f"<details{' open' if number == 0 else ''}><summary>GX validation result: <code>"
            f'{html.escape(suite)}</code></summary><iframe title="{html.escape(suite)}" '
            f'srcdoc="{html.escape(page.read_text(encoding="utf-8"), quote=True)}"></iframe></details>'
        )
    return "".join(blocks)


def write_index_html(
    path: Path,
    dataset_dir: Path,
    success: bool,
    outcomes: list[CheckOutcome],
    statistics: dict,
    plot_uris: dict[str, str],
    docs_index: Path,
    review: list[ReviewSection] | None = None,
) -> None:
    """The report's entry page: verdict, checks, offending rows, inlined plots, frame strips to review by eye,
    and the GX Data Docs site."""
    e = html.escape
    docs_link = e(Path(os.path.relpath(docs_index, path.parent)).as_posix())
    rows = []
    for o in outcomes:
        observed = "" if o.observed is None else e(_short(o.observed, 60))
        unexpected = "" if o.unexpected_count is None else str(o.unexpected_count)
        rows.append(
            f'<tr class="{"passed" if o.success else "failed"}"><td><code>{e(o.name)}</code></td>'
            f"<td>{'pass' if o.success else 'FAIL'}</td><td>{e(o.what)}</td><td><code>{e(o.expectation)}"
            f"</code></td><td>{observed}</td><td>{unexpected}</td></tr>"
        )
    offender_sections = []
    for o in (o for o in outcomes if not o.success):
        if o.offenders:
            body = "".join(
                f"<tr><td><code>{e(x.row_id)}</code></td><td><code>{e(str(x.video))}</code></td>"
                f"<td>{e(_short(x.value, 120))}</td></tr>"
                for x in o.offenders
            )
            table = f"<table><tr><th>id</th><th>video</th><th>value</th></tr>{body}</table>"
        else:
            table = f"<p>Observed <code>{e(_short(o.observed))}</code> (dataset-level, no single row).</p>"
        offender_sections.append(f"<h3><code>{e(o.name)}</code>: {e(o.what)}</h3>{table}")
    plots = "".join(f'<img alt="{e(title)}" src="{uri}">' for title, uri in plot_uris.items())
    verdict = "PASSED" if success else "FAILED"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Caption quality gate: {verdict}</title>
<style>{_STYLE}</style></head><body>
<div class="banner {"pass" if success else "fail"}">Caption quality gate: {verdict}</div>
<p>Dataset <code>{e(str(dataset_dir))}</code>: {statistics["dataset_rows"]} captioned videos,
{statistics["ledger_kept"]} of {statistics["ledger_rows"]} curation inputs kept.</p>
<h2>Checks</h2>
<table><tr><th>check</th><th>result</th><th>what</th><th>GX expectation</th><th>observed</th>
<th>unexpected rows</th></tr>{"".join(rows)}</table>
<h2>Offending rows</h2>{"".join(offender_sections) or "<p>None: every check passed.</p>"}
<h2>Plots</h2><div class="plots">{plots}</div>
<h2>Review by eye</h2>{_review_html(review or []) or "<p>No videos to show.</p>"}
<h2>Great Expectations Data Docs</h2>
<p><a href="{docs_link}">Open the Data Docs site</a> (expectation suites and validation results, in the
report folder). The validation pages are embedded below, so this page also reads as a single file.</p>
{_embedded_validation_pages(docs_index)}
</body></html>
"""
    path.write_text(page, encoding="utf-8")


def publish_single_file_report(result: GateResult, html_out: str | Path, markdown_out: str | Path) -> None:
    """Copy the self-contained index.html and summary.md to the KFP HTML and Markdown artifact files."""
    for source, target in ((result.html_path, html_out), (result.markdown_path, markdown_out)):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
