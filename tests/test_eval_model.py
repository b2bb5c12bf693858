"""End-to-end evaluation with the real tiny Kangaroo model on a real synthetic corpus.

Bias control: a randomly initialised model of the tiny size must score at chance on the held-out sample
questions, and predictors that never look at the video (always one letter, longest/shortest option) too.
"At chance" = inside chance +/- eval.chance_sigma binomial standard deviations (3 sigma): with n ~ 60
four-option questions sd = sqrt(0.25 * 0.75 / 60) = 0.056, so the band is ~[0.08, 0.42]; a real leak
(e.g. the answer always being the longest option) drives an answer-agnostic predictor to ~1.0, far outside.

The other side, a model trained here clearing >= 2x chance on a corpus's held-out split, is
tests/test_trained_temporal.py.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from kangaroo.config import load_params
from kangaroo.eval.benchmarks import BenchmarkSpec, load_benchmark
from kangaroo.eval.checks import answer_agnostic_accuracies, chance_report, guessing_band
from kangaroo.eval.frames import FrameSampler, plan_frames
from kangaroo.eval.prompts import build_prompt
from kangaroo.eval.runner import evaluate_checkpoint
from kangaroo.eval.scoring import scored_positions, sequence_logprobs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def params():
    return load_params(ROOT / "params.yaml", "tiny")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, params):
    from kangaroo.synth.corpus import write_corpus

    # Half the clips held out and two long clips, so one long clip (timestamp probes) lands in eval.
    settings = params.synth.model_copy(
        update={
            "num_videos": 24,
            "eval_fraction": 0.5,
            "num_long_videos": 2,
            "long_video_seconds": 150.0,
            "num_motion_clips": 0,
        }
    )
    out = tmp_path_factory.mktemp("sample")
    write_corpus(out, settings)
    return out


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory, params):
    from kangaroo.model.build import build_model_and_processor, save_model_and_processor

    model, processor = build_model_and_processor(params.model)
    return save_model_and_processor(model, processor, tmp_path_factory.mktemp("random") / "model")


@pytest.fixture(scope="module")
def random_result(random_checkpoint, corpus, params, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval-random")
    return evaluate_checkpoint(
        random_checkpoint, f"sample:{corpus}", out, params, lmms_eval_json=True, progress=False
    )


def test_random_model_scores_at_chance(random_result, params):
    metrics = random_result.metrics
    settings = params.eval
    assert metrics["num_questions"] >= 40
    likelihood = chance_report(metrics, settings.chance_sigma, settings.min_ratio_over_chance, "likelihood")
    assert likelihood["at_chance"], likelihood
    assert not likelihood["meets_min_ratio"]
    assert (
        metrics["likelihood"]["vs_chance"]["at_chance"] and metrics["likelihood"]["vs_chance"]["chance_band"]
    )
    predicted = metrics["likelihood"]["predicted_letters"]
    assert sum(count > 0 for letter, count in predicted.items() if letter != "none") >= 2, predicted
    # Free generation of a random model names no letter: never above chance, mostly parse failures.
    generation = chance_report(metrics, settings.chance_sigma, settings.min_ratio_over_chance, "generation")
    assert generation["accuracy"] <= generation["chance_band"][1]
    assert metrics["generation"]["parse_failure_rate"] > 0.5
    assert metrics["headline_mode"] == "likelihood" and metrics["accuracy"] == likelihood["accuracy"]


def test_answers_cannot_be_guessed_without_the_video(corpus, params):
    questions = load_benchmark(BenchmarkSpec.parse(f"sample:{corpus}", split="eval"))
    low, high = guessing_band(questions, params.eval.chance_sigma)
    for predictor, accuracy in answer_agnostic_accuracies(questions).items():
        assert low <= accuracy <= high, (predictor, accuracy, (low, high))


def test_metrics_predictions_and_lmms_eval_files(random_result, corpus, params):
    out = random_result.out_dir
    metrics = json.loads((out / "metrics.json").read_text())
    for key in (
        "accuracy",
        "chance",
        "per_category",
        "num_questions",
        "generation",
        "likelihood",
        "long_video",
    ):
        assert key in metrics
    assert metrics["chance"] == pytest.approx(0.25)
    assert set(metrics["per_category"]) >= {"color", "long_timestamp"}
    confusion = metrics["likelihood"]["confusion"]
    assert confusion["labels"] == ["A", "B", "C", "D", "none"]
    assert sum(map(sum, confusion["matrix"])) == metrics["num_questions"]
    assert sum(confusion["matrix"][i][i] for i in range(4)) == metrics["likelihood"]["num_correct"]
    long_video = metrics["long_video"]
    timestamp_questions = [
        q
        for q in load_benchmark(BenchmarkSpec.parse(f"sample:{corpus}", "eval"))
        if q.category == "long_timestamp"
    ]
    assert long_video["category"] == "long_timestamp"
    assert long_video["likelihood"]["num_questions"] == len(timestamp_questions) > 0
    run = metrics["run"]
    assert run["decoder_backend"] == params.video.backend and run["split"] == "eval"
    assert "Only give the best option." in run["prompt_template"] and run["code_version"]
    assert metrics["frames"]["num_frames_setting"] == params.eval.num_frames
    assert 1 <= metrics["frames"]["min"] <= metrics["frames"]["max"] <= params.eval.num_frames
    assert sum(metrics["frames"]["decoders_used"].values()) == metrics["num_questions"]
    assert set(metrics["frames"]["decoders_used"]) <= {"pyav", "decord"}
    # A 150 s clip at the 1 fps cap gets the full frame budget; timestamps are real seconds, not indices.
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == metrics["num_questions"]
    long_row = next(r for r in rows if r["category"] == "long_timestamp")
    assert long_row["num_frames"] == params.eval.num_frames and long_row["frame_timestamps"][-1] > 100
    for row in rows:
        assert {"doc_id", "input", "target", "responses", "filtered_resps", "metric"} <= set(row)
        assert row["input"].startswith("Question: ") and row["target"] in "ABCD"
        assert len(row["likelihood"]["option_logprobs"]) == len(row["options"])
        assert row["metric"]["likelihood_accuracy"] == float(row["likelihood"]["prediction"] == row["target"])
    lmms = json.loads((out / "results_lmms_eval.json").read_text())
    assert lmms["results"]["sample"]["likelihood_accuracy,none"] == pytest.approx(
        100 * metrics["likelihood"]["accuracy"]
    )
    assert "sample_long_timestamp" in lmms["results"]


def test_option_logprob_matches_the_models_own_loss(random_checkpoint, corpus, params):
    """The likelihood scorer's per-row sum / count equals the model's mean label loss for that row."""
    from kangaroo.model.build import load_model_and_processor

    model, processor = load_model_and_processor(random_checkpoint)
    question = load_benchmark(BenchmarkSpec.parse(f"sample:{corpus}", "eval"))[0]
    frames = FrameSampler(params.video, 4, params.eval.max_fps, processor.image_size)(question)
    inputs = processor(
        [{"role": "user", "content": build_prompt(question)}, {"role": "assistant", "content": "(A) red"}],
        videos=[frames],
    )
    with torch.inference_mode():
        output = model(**inputs)
    labels = inputs.pop("labels")
    total, count = sequence_logprobs(output.logits[:, :-1], labels[:, 1:])
    assert int(count[0]) == int((labels[0, 1:] != -100).sum()) > 2
    assert float(-total[0] / count[0]) == pytest.approx(float(output.loss), rel=1e-4)
    # what score_options runs: the LM head on the scored positions only, same sum
    positions = scored_positions(labels)
    assert len(positions) == int(count[0]) < labels.shape[1] // 2
    with torch.inference_mode():
        kept = model(**inputs, logits_to_keep=positions).logits
    assert kept.shape[1] == len(positions)
    kept_total, kept_count = sequence_logprobs(kept, labels[:, positions + 1])
    assert int(kept_count[0]) == int(count[0])
    assert float(kept_total[0]) == pytest.approx(float(total[0]), rel=1e-5)


def test_batching_does_not_change_answers(random_checkpoint, corpus, params):
    """Left-padded generation and right-padded likelihood give a question the same result alone or batched."""
    from kangaroo.eval.prompts import option_continuations
    from kangaroo.eval.runner import prepare_questions
    from kangaroo.eval.scoring import generate_answers, score_options
    from kangaroo.model.build import load_model_and_processor

    model, processor = load_model_and_processor(random_checkpoint)
    questions = load_benchmark(BenchmarkSpec.parse(f"sample:{corpus}", "eval"))
    chosen = [questions[0], next(q for q in questions if q.category == "long_timestamp"), questions[-1]]
    sampler = FrameSampler(params.video, params.eval.num_frames, params.eval.max_fps, processor.image_size)
    prepared, _ = prepare_questions(chosen, sampler, progress=False)
    size = processor.image_size
    alone = generate_answers(model, processor, prepared[:1], size, params.eval.max_new_tokens)[0]
    batched = generate_answers(model, processor, prepared, size, params.eval.max_new_tokens)
    assert batched[0].text == alone.text and batched[0].num_input_tokens == alone.num_input_tokens
    assert len({b.num_input_tokens for b in batched}) > 1  # the batch really was padded
    style = params.eval.likelihood_continuation
    single = score_options(model, processor, prepared[:1], [option_continuations(chosen[0], style)], size)[0]
    together = score_options(
        model, processor, prepared, [option_continuations(q, style) for q in chosen], size
    )[0]
    assert [s.num_tokens for s in single] == [s.num_tokens for s in together]
    assert [s.sum_logprob for s in single] == pytest.approx([s.sum_logprob for s in together], abs=1e-4)


def test_frames_follow_the_question_window(corpus, params):
    plan = plan_frames(duration=150.0, start=120.0, end=140.0, num_frames=16, max_fps=1.0)
    assert len(plan.times) == 16 and plan.times.min() > 120.0 and plan.times.max() < 140.0
    assert len(plan_frames(3.0, None, None, 16, 1.0).times) == 3  # fps cap on a short clip
    assert len(plan_frames(3.0, 5.0, 9.0, 16, 1.0).times) == 3  # window past the end: whole clip
    long_clip = next(
        json.loads(line)
        for line in (corpus / "ground_truth.jsonl").read_text().splitlines()
        if json.loads(line)["kind"] == "long"
    )
    from kangaroo.eval.benchmarks import MCQuestion

    question = MCQuestion(
        "w", str(corpus / long_clip["video"]), "?", ("a", "b"), "A", "timestamp", "t", 60.0, 80.0
    )
    frames = FrameSampler(params.video, 8, 1.0, 64)(question)
    assert frames.frames.shape == (8, 64, 64, 3)
    assert np.all((frames.video_timestamps >= 60.0) & (frames.video_timestamps <= 80.0))
    assert np.allclose(frames.timestamps, frames.video_timestamps - 60.0)


def test_cli_evaluate_counts_an_undecodable_video_as_wrong(random_checkpoint, corpus, tmp_path):
    from kangaroo.cli import app

    sample = tmp_path / "sample"
    (sample / "videos").mkdir(parents=True)
    rows = [json.loads(line) for line in (corpus / "questions.jsonl").read_text().splitlines()]
    good = next(r for r in rows if r["split"] == "eval")
    shutil.copy(corpus / good["video"], sample / good["video"])
    (sample / "videos" / "broken.mp4").write_bytes(b"\x00" * 64)
    broken = {**good, "question_id": "broken", "video": "videos/broken.mp4"}
    (sample / "questions.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(broken) + "\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            str(random_checkpoint),
            "--benchmark",
            f"sample:{sample}",
            "--out",
            str(out),
            "--mode",
            "generation",
            "--lmms-eval-json",
            "--params",
            str(ROOT / "params.yaml"),
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_questions"] == 2 and metrics["num_video_errors"] == 1
    assert "likelihood" not in metrics and metrics["headline_mode"] == "generation"
    rows = {json.loads(line)["question_id"]: json.loads(line) for line in (out / "predictions.jsonl").open()}
    assert rows["broken"]["video_error"] and rows["broken"]["metric"]["generation_accuracy"] == 0.0
    assert (out / "results_lmms_eval.json").is_file()


def test_cli_rejects_a_bad_benchmark_spec(random_checkpoint, tmp_path):
    from kangaroo.cli import app

    result = CliRunner().invoke(
        app, ["evaluate", str(random_checkpoint), "--benchmark", "imagenet:/x", "--out", str(tmp_path)]
    )
    assert result.exit_code != 0
    assert "KIND:PATH" in str(result.exception)


def test_result_converts_to_kfp_metrics(random_result):
    """The KFP component logs flat_metrics() into Metrics and the confusion into ClassificationMetrics."""
    from kfp.dsl import ClassificationMetrics, Metrics

    metrics = Metrics(name="metrics")
    for name, value in random_result.flat_metrics().items():
        metrics.log_metric(name, value)
    assert metrics.metadata["accuracy"] == random_result.accuracy
    assert (
        "likelihood_accuracy_long_timestamp" in metrics.metadata
        and "long_video_likelihood_accuracy" in metrics.metadata
    )
    confusion = ClassificationMetrics(name="confusion")
    confusion.log_confusion_matrix(random_result.confusion_labels, random_result.confusion_matrix)
    rows = confusion.metadata["confusionMatrix"]["rows"]
    assert len(rows) == len(random_result.confusion_labels) == 5
    assert sum(sum(row["row"]) for row in rows) == random_result.metrics["num_questions"]


def test_mvbench_layout_end_to_end_with_a_window(random_checkpoint, corpus, params, tmp_path):
    """A published layout (MVBench) scored on real clips; a start/end window limits the frames shown."""
    rows = [json.loads(line) for line in (corpus / "questions.jsonl").read_text().splitlines()]
    clips = sorted({r["video"] for r in rows if r["category"] == "long_timestamp"})[:1] + [rows[0]["video"]]
    folder = tmp_path / "mvbench" / "video" / "clevrer" / "video_validation"
    folder.mkdir(parents=True)
    for clip in clips:
        shutil.copy(corpus / clip, folder / Path(clip).name)
    (tmp_path / "mvbench" / "json").mkdir()
    (tmp_path / "mvbench" / "json" / "moving_direction.json").write_text(
        json.dumps(
            [
                {
                    "video": Path(clips[0]).name,
                    "question": "Which way?",
                    "candidates": ["left", "up", "down"],
                    "answer": "up",
                    "start": 30.0,
                    "end": 40.0,
                },
                {
                    "video": Path(clips[1]).name,
                    "question": "Which way?",
                    "candidates": ["left", "right"],
                    "answer": "left",
                },
            ]
        )
    )
    result = evaluate_checkpoint(
        random_checkpoint,
        f"mvbench:{tmp_path / 'mvbench'}",
        tmp_path / "out",
        params,
        ("likelihood",),
        progress=False,
    )
    assert result.metrics["num_questions"] == 2 and result.metrics["num_video_errors"] == 0
    assert set(result.metrics["per_category"]) == {"moving_direction"}
    assert result.metrics["chance"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    windowed = result.predictions[0]
    assert windowed["num_frames"] == 10  # 10 s window at the 1 fps cap
    assert 0.0 < windowed["frame_timestamps"][0] < windowed["frame_timestamps"][-1] < 10.0
    assert result.metrics["run"]["prompt_template"].startswith("Question: ")
