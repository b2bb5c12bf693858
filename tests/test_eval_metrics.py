"""Accuracy, chance, per-category and confusion on hand-checked predictions."""

from kangaroo.eval.benchmarks import MCQuestion
from kangaroo.eval.metrics import chance_band, mode_metrics, subset_metrics


def question(qid, answer, category, num_options=4):
    options = tuple(f"opt{i}" for i in range(num_options))
    return MCQuestion(qid, "v.mp4", "?", options, answer, category, category)


def test_mode_metrics_counts_hits_failures_and_confusion():
    questions = [
        question("1", "A", "color"),
        question("2", "B", "color"),
        question("3", "C", "timestamp", num_options=5),
        question("4", "A", "timestamp", num_options=2),
    ]
    predictions = ["A", "C", None, "A"]
    metrics = mode_metrics(questions, predictions)
    assert metrics["accuracy"] == 0.5 and metrics["num_correct"] == 2 and metrics["num_questions"] == 4
    assert abs(metrics["chance"] - (0.25 + 0.25 + 0.2 + 0.5) / 4) < 1e-12
    assert metrics["parse_failure_rate"] == 0.25
    assert metrics["per_category"]["color"] == {"accuracy": 0.5, "chance": 0.25, "num_questions": 2}
    assert metrics["per_category"]["timestamp"]["accuracy"] == 0.5
    labels = metrics["confusion"]["labels"]
    assert labels == ["A", "B", "C", "D", "E", "none"]
    matrix = metrics["confusion"]["matrix"]
    assert matrix[0][0] == 2 and matrix[1][2] == 1 and matrix[2][5] == 1
    assert sum(map(sum, matrix)) == 4
    assert metrics["predicted_letters"] == {"A": 2, "B": 0, "C": 1, "D": 0, "E": 0, "none": 1}
    long_video = subset_metrics(questions, predictions, "timestamp")
    assert long_video["num_questions"] == 2 and long_video["accuracy"] == 0.5
    assert subset_metrics(questions, predictions, "absent") is None


def test_chance_band_shrinks_with_more_questions():
    few = [question(str(i), "A", "c") for i in range(16)]
    many = [question(str(i), "A", "c") for i in range(400)]
    low_few, high_few = chance_band(few, sigma=3)
    low_many, high_many = chance_band(many, sigma=3)
    assert low_few < low_many < 0.25 < high_many < high_few
    # 400 four-way questions: std = sqrt(0.1875 / 400) = 0.02165
    assert abs((high_many - 0.25) - 3 * 0.0216506) < 1e-5
