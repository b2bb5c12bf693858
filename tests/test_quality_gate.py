"""The caption quality gate on real dataset folders: a clean one passes, each corruption fails its check."""

from __future__ import annotations

import copy
import itertools
import json
import re
from pathlib import Path

import pytest

from kangaroo.quality.report import publish_single_file_report
from kangaroo.quality.runner import run_quality_gate
from kangaroo.quality.settings import QualitySettings

SETTINGS = QualitySettings(
    min_caption_words=6,
    max_caption_words=120,
    max_exact_duplicate_fraction=0.05,
    max_near_duplicate_fraction=0.1,
    min_distinct_3gram_ratio=0.6,
    expected_frame_captions=5,
    min_duration_s=1.0,
    max_duration_s=600.0,
    min_kept_fraction=0.3,
    max_kept_fraction=0.95,
    min_rows=20,
    max_decode_error_fraction=0.2,
    max_caption_failure_fraction=0.05,
)
NUM_VIDEOS = 40
SHAPES = ("circle", "square", "triangle", "star", "hexagon")
COLORS = ("red", "green", "blue", "yellow", "purple", "orange")
DIRECTIONS = ("left", "right", "up", "down")
REJECTIONS = ("duration", "text_coverage", "face_coverage", "static_scene", "decode_error", "duration")


def clean_rows() -> list[dict]:
    """Captions like the synthetic corpus's: coloured shapes that move, change colour, appear."""
    combos = itertools.islice(itertools.product(SHAPES, COLORS, DIRECTIONS, COLORS), 7, None, 3)
    rows = []
    for i, (shape, color, direction, new_color) in enumerate(itertools.islice(combos, NUM_VIDEOS)):
        if new_color == color:
            new_color = COLORS[(COLORS.index(color) + 1) % len(COLORS)]
        other = SHAPES[(SHAPES.index(shape) + i) % len(SHAPES)]
        duration = 6.0 + (i % 9) * 1.5
        change_at = round(duration * 0.6, 1)
        caption = (
            f"A {color} {shape} moves {direction} across a grey background. "
            f"At {change_at} seconds it turns {new_color}, and a small {other} appears near the corner."
        )
        actions = ("enters", f"drifts {direction}", f"keeps moving {direction}", "changes colour", "rests")
        frames = [
            {
                "t": round(duration * (k + 0.5) / 5, 2),
                "caption": f"a {color if k < 3 else new_color} {shape} {a}",
            }
            for k, a in enumerate(actions)
        ]
        key = f"clip_{i:04d}"
        rows.append(
            {
                "video": f"videos/{key}.mp4",
                "key": key,
                "duration": duration,
                "fps": 24.0,
                "width": 320,
                "height": 240,
                "scores": {"text_coverage": 0.0, "face_coverage": 0.0, "static_scene": 2.5},
                "frame_captions": frames,
                "caption": caption,
                "captioner": "source",
            }
        )
    return rows


def ledger_for(rows: list[dict], rejected: int) -> list[dict]:
    kept = [
        {"video": r["video"], "key": r["key"], "status": "kept", "reason": None, "error": None, "scores": {},
         "duration": r["duration"], "fps": 24.0, "width": 320, "height": 240, "shard": 0}
        for r in rows
    ]  # fmt: skip
    dropped = [
        {"video": f"videos/bad_{j:04d}.mp4", "key": f"bad_{j:04d}", "status": "rejected",
         "reason": REJECTIONS[j % len(REJECTIONS)], "error": None, "scores": {}, "duration": 1.0,
         "fps": 24.0, "width": 320, "height": 240, "shard": 1}
        for j in range(rejected)
    ]  # fmt: skip
    return kept + dropped


def write_dataset(folder: Path, rows: list[dict], ledger: list[dict]) -> Path:
    folder.mkdir(parents=True)
    for name, records in (("dataset.jsonl", rows), ("ledger.jsonl", ledger)):
        with (folder / name).open("w", encoding="utf-8") as out:
            out.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    return folder


def with_captions(rows: list[dict], captions: dict[int, object]) -> list[dict]:
    rows = copy.deepcopy(rows)
    for index, caption in captions.items():
        rows[index]["caption"] = caption
    return rows


def with_frames(rows: list[dict], index: int, edit) -> list[dict]:
    rows = copy.deepcopy(rows)
    rows[index]["frame_captions"] = edit(rows[index]["frame_captions"], rows[index]["duration"])
    return rows


ROWS = clean_rows()
LONG_CAPTION = " ".join(
    f"{c} {s} number {n} moves." for n, (c, s) in enumerate(itertools.product(COLORS, SHAPES))
)
REPEATED = "the red circle moves left and " * 6 + "stops."

# failure class -> (rows, ledger, checks that must fail, ids the summary must name)
CORRUPTIONS = {
    "null_caption": (with_captions(ROWS, {3: None}), None, {"caption_not_null"}, ["clip_0003"]),
    "empty_caption": (with_captions(ROWS, {4: "", 9: "   "}), None,
                      {"caption_not_empty", "caption_word_count"}, ["clip_0004", "clip_0009"]),
    "too_short": (with_captions(ROWS, {5: "A circle."}), None, {"caption_word_count"}, ["clip_0005"]),
    "too_long": (with_captions(ROWS, {6: LONG_CAPTION}), None, {"caption_word_count"}, ["clip_0006"]),
    "exact_duplicates": (with_captions(ROWS, {i: ROWS[0]["caption"] for i in range(1, 5)}), None,
                         {"caption_exact_duplicates"}, ["clip_0000", "clip_0004"]),
    "near_duplicates": (
        with_captions(ROWS, {i: ROWS[0]["caption"].upper().replace(",", "") + " " * i for i in range(1, 6)}),
        None, {"caption_near_duplicates"}, ["clip_0000", "clip_0005"]),
    "boilerplate": (
        with_captions(ROWS, {
            7: "As an AI, I cannot watch videos, but a red circle seems to move left.",
            8: "The image shows a blue square on a grey background near the corner.",
            11: "Describe this video in detail. A green star moves up and turns red.",
        }), None, {"caption_no_boilerplate"}, ["clip_0007", "clip_0008", "clip_0011"]),
    "repetition": (with_captions(ROWS, {12: REPEATED}), None, {"caption_not_repetitive"}, ["clip_0012"]),
    "charset": (with_captions(ROWS, {13: "A red circle moves left\x00 and turns blue at 3 seconds.",
                                     14: "A red circle moves left 然后 turns blue at 3 seconds."}),
                None, {"caption_charset"}, ["clip_0013", "clip_0014"]),
    "timestamps_outside_duration": (
        with_frames(ROWS, 15, lambda f, d: f[:-1] + [{"t": d + 4.0, "caption": "a red circle rests"}]),
        None, {"frame_times_within_duration"}, ["clip_0015"]),
    "timestamps_not_increasing": (
        with_frames(ROWS, 16, lambda f, d: [f[0], f[2], f[1], f[3], f[4]]),
        None, {"frame_times_increasing"}, ["clip_0016"]),
    "frame_caption_count": (with_frames(ROWS, 17, lambda f, d: f[:3]), None, {"frame_caption_count"},
                            ["clip_0017"]),
    "kept_fraction_low": (ROWS, ledger_for(ROWS, rejected=200), {"kept_fraction"}, []),
    "kept_fraction_high": (ROWS, ledger_for(ROWS, rejected=0), {"kept_fraction"}, []),
    "row_count": (ROWS[:10], ledger_for(ROWS[:10], rejected=4), {"row_count"}, []),
    # 12 of 52 inputs unreadable (23%): a store outage recorded as content would look like this
    "decode_error_share": (ROWS, [{**r, "reason": "decode_error"} if r["status"] == "rejected" else r
                                  for r in ledger_for(ROWS, rejected=12)], {"decode_error_fraction"}, []),
}  # fmt: skip


@pytest.fixture(scope="module")
def clean_gate(tmp_path_factory):
    folder = write_dataset(tmp_path_factory.mktemp("clean") / "dataset", ROWS, ledger_for(ROWS, rejected=12))
    report = tmp_path_factory.mktemp("clean_report")
    return folder, report, run_quality_gate(folder, report, SETTINGS)


def test_clean_dataset_passes(clean_gate):
    _, report, gate = clean_gate
    failed = {o.name: (o.observed, [x.row_id for x in o.offenders]) for o in gate.outcomes if not o.success}
    assert gate.success, failed
    assert gate.failed_expectations == []
    result = json.loads(gate.json_path.read_text())
    assert result["success"] is True and result["failed_expectations"] == []
    assert result["statistics"]["dataset_rows"] == NUM_VIDEOS
    assert result["statistics"]["kept_fraction"] == pytest.approx(NUM_VIDEOS / (NUM_VIDEOS + 12))
    assert len(result["checks"]) == len(gate.outcomes) >= 15
    assert "PASSED" in gate.markdown_path.read_text()


def test_clean_report_html_has_checks_plots_and_data_docs(clean_gate):
    _, report, gate = clean_gate
    page = gate.html_path.read_text()
    assert gate.html_path == report / "index.html"
    for outcome in gate.outcomes:
        assert f"<code>{outcome.name}</code>" in page
    assert page.count('src="data:image/png;base64,') == 2
    assert 'alt="Caption length histogram"' in page and 'alt="Rejections per curation filter"' in page
    # The GX Data Docs site is linked with a relative path that resolves to the site's entry page.
    link = re.search(r'<a href="([^"]+)">Open the Data Docs site', page).group(1)
    site_index = (report / link).resolve()
    assert site_index == gate.docs_site_index.resolve() and site_index.is_file()
    validation_pages = list(site_index.parent.glob("validations/**/*.html"))
    assert len(validation_pages) == 2  # the per-video batch and the dataset-level batch
    docs_text = " ".join(p.read_text() for p in validation_pages)
    assert "caption_words" in docs_text and "kept_fraction" in docs_text


def test_single_file_report_for_kfp_embeds_the_gx_validation_pages(clean_gate, tmp_path):
    _, _, gate = clean_gate
    publish_single_file_report(gate, tmp_path / "html" / "report.html", tmp_path / "md" / "summary.md")
    single = (tmp_path / "html" / "report.html").read_text()
    assert single == gate.html_path.read_text()
    assert (tmp_path / "md" / "summary.md").read_text() == gate.markdown_path.read_text()
    assert single.count("<iframe") == 2 and single.count("srcdoc=") == 2
    assert "kangaroo_captions" in single and "kangaroo_dataset" in single
    assert "expect_column_values_to_not_match_regex_list" in single


def test_rerun_into_the_same_report_folder_replaces_the_report(clean_gate, tmp_path):
    folder, _, _ = clean_gate
    run_quality_gate(folder, tmp_path / "report", SETTINGS)
    bad_rows = with_captions(ROWS, {5: "A circle."})
    bad = write_dataset(tmp_path / "bad", bad_rows, ledger_for(bad_rows, rejected=12))
    rerun = run_quality_gate(bad, tmp_path / "report", SETTINGS)
    assert rerun.failed_expectations == ["caption_word_count"]
    assert len(list((tmp_path / "report" / "gx_data_docs").glob("validations/**/*.html"))) == 2
    assert "PASSED" not in rerun.html_path.read_text() and "FAILED" in rerun.markdown_path.read_text()


@pytest.mark.parametrize("failure", sorted(CORRUPTIONS))
def test_corrupted_dataset_fails_on_the_right_check(failure, tmp_path):
    rows, ledger, expected_failures, offending_ids = CORRUPTIONS[failure]
    folder = write_dataset(tmp_path / "dataset", rows, ledger or ledger_for(rows, rejected=12))
    gate = run_quality_gate(folder, tmp_path / "report", SETTINGS)

    assert not gate.success
    assert set(gate.failed_expectations) == expected_failures
    result = json.loads(gate.json_path.read_text())
    assert result["success"] is False and set(result["failed_expectations"]) == expected_failures
    summary = gate.markdown_path.read_text()
    page = gate.html_path.read_text()
    assert "FAILED" in summary and "FAILED" in page
    for name in expected_failures:
        assert f"## `{name}` failed" in summary
        assert f'<tr class="failed"><td><code>{name}</code>' in page
    for row_id in offending_ids:
        assert f"`{row_id}`" in summary
        assert f"<code>{row_id}</code>" in page
    clean_ids = {r["key"] for r in ROWS} - set(offending_ids)
    named_in_summary = set(re.findall(r"`(clip_\d{4})`", summary))
    if failure not in ("exact_duplicates", "near_duplicates"):  # duplicate groups name every copy
        assert not (named_in_summary & clean_ids)
        # GX's own validation page lists the unexpected rows by id too.
        docs_pages = " ".join(
            p.read_text() for p in gate.docs_site_index.parent.glob("validations/**/*.html")
        )
        assert all(row_id in docs_pages for row_id in offending_ids)


def test_caption_failure_share_fails_the_gate(tmp_path):
    """3 of 40 kept videos not captioned (7.5% > 5%): the captioner was down, the gate says so."""
    folder = write_dataset(tmp_path / "dataset", ROWS[3:], ledger_for(ROWS, rejected=12))
    failures = [{"video": r["video"], "key": r["key"], "error": "HTTP 503"} for r in ROWS[:3]]
    (folder / "caption_failures.jsonl").write_text("".join(json.dumps(f) + "\n" for f in failures))
    gate = run_quality_gate(folder, tmp_path / "report", SETTINGS)
    assert gate.failed_expectations == ["caption_failure_fraction"]
    statistics = json.loads(gate.json_path.read_text())["statistics"]
    assert statistics["caption_failure_fraction"] == pytest.approx(3 / 40)
    (folder / "caption_failures.jsonl").write_text(json.dumps(failures[0]) + "\n")  # 1 of 38: 2.6%
    assert run_quality_gate(folder, tmp_path / "report2", SETTINGS).success
