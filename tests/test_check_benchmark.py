"""Can a benchmark be answered without its videos? The wording baseline (`kangaroo.eval.checks`) and
`kangaroo check-benchmark`, on the motion clips' questions of 4,000 generated clips (plans only, no video).

The motion questions must stay at chance: their generator once let the wording answer order and timestamp
(~0.5 with hand-made features, 0.36 / 0.45 with this baseline; docs/training.md E54-E55). Positive control,
a leak of that kind: drop the questions whose answer is a disappearance or a move right or down, so the
wording tells an event from its played-backwards twin (the old generator never made a disappearance the
first event); the baseline must find it, fitted on the training split or two-fold on the held-out one.
"""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kangaroo.cli import app
from kangaroo.eval.benchmarks import load_sample
from kangaroo.eval.checks import band_for, wording_baseline_accuracies
from kangaroo.eval.settings import EvalSettings
from kangaroo.synth.corpus import write_jsonl
from kangaroo.synth.motion import motion_question_drafts, plan_motion_clips
from kangaroo.synth.questions import write_questions
from kangaroo.synth.settings import SynthSettings

ROOT = Path(__file__).resolve().parents[1]
BACKWARDS_LOOKING = ("disappears", "moves right", "moves down")


@pytest.fixture(scope="module")
def benchmarks(tmp_path_factory):
    """(fair, leaky): sample benchmark folders with the motion questions, all of them and the leaky subset."""
    rows = write_questions(
        [], 0, motion_question_drafts(plan_motion_clips(SynthSettings(num_motion_clips=4000)), 0)
    )
    fair, leaky = tmp_path_factory.mktemp("fair"), tmp_path_factory.mktemp("leaky")
    write_jsonl(fair / "questions.jsonl", rows)
    kept = [r for r in rows if not r["options"]["ABCD".index(r["answer"])].endswith(BACKWARDS_LOOKING)]
    assert 0 < len(kept) < len(rows)
    write_jsonl(leaky / "questions.jsonl", kept)
    return fair, leaky


def test_motion_questions_cannot_be_answered_from_their_wording(benchmarks):
    fair, leaky = benchmarks
    sigma = EvalSettings().chance_sigma

    def band(questions, category):
        return band_for(0.25, sum(q.category == category for q in questions), sigma)

    train, held_out = load_sample(fair, "train"), load_sample(fair, "eval")
    accuracies = wording_baseline_accuracies(train, held_out)
    assert set(accuracies) == {"direction", "order", "timestamp"}
    for category, accuracy in accuracies.items():
        low, high = band(held_out, category)
        assert low <= accuracy <= high, (category, accuracy, (low, high))

    train, held_out = load_sample(leaky, "train"), load_sample(leaky, "eval")
    leaked = wording_baseline_accuracies(train, held_out)
    for category in ("order", "timestamp"):
        assert leaked[category] > band(held_out, category)[1], leaked


@pytest.mark.parametrize("fit_split", ["train", None])
def test_check_benchmark_cli_exits_1_on_a_leak(benchmarks, fit_split, monkeypatch):
    monkeypatch.chdir(ROOT)
    fair, leaky = benchmarks
    fit = ["--fit-split", fit_split] if fit_split else []
    runner = CliRunner()
    reports = {}
    for name, folder in (("fair", fair), ("leaky", leaky)):
        result = runner.invoke(app, ["check-benchmark", "--benchmark", f"sample:{folder}", *fit])
        reports[name] = (result.exit_code, json.loads(result.stdout))  # the logs go to stderr
    code, report = reports["fair"]
    assert code == 0 and report["leaks"] == [], report
    assert set(report["wording_baseline"]) == {"direction", "order", "timestamp"}
    assert report["num_questions"] == 3000  # 1,000 held-out clips, one question of each category
    code, report = reports["leaky"]
    assert code == 1 and {"wording:order", "wording:timestamp"} <= set(report["leaks"]), report
