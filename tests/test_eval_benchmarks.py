"""Benchmark adapters read small files written in each benchmark's published layout."""

# ruff: noqa: F811  (pytest fixtures imported from s3_server are used as test arguments)
import json

import pandas as pd
import pytest
from s3_server import s3_bucket, s3_server  # noqa: F401  (pytest fixtures)

from kangaroo.eval.benchmarks import BenchmarkError, BenchmarkSpec, load_benchmark


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_sample_layout_filters_split_and_resolves_relative_videos(tmp_path):
    write_jsonl(
        tmp_path / "questions.jsonl",
        [
            {
                "question_id": "q1",
                "clip_id": "c1",
                "video": "videos/c1.mp4",
                "question": "What colour?",
                "options": ["red", "blue", "green"],
                "answer": "B",
                "category": "color",
                "split": "eval",
                "start": None,
                "end": None,
            },
            {
                "question_id": "q2",
                "clip_id": "c2",
                "video": "videos/c2.mp4",
                "question": "At 02:10?",
                "options": ["red", "blue", "green", "white"],
                "answer": "d",
                "category": "timestamp",
                "split": "eval",
                "start": 120.0,
                "end": 140.0,
            },
            {
                "question_id": "q3",
                "clip_id": "c3",
                "video": "videos/c3.mp4",
                "question": "Shape?",
                "options": ["circle", "star"],
                "answer": "A",
                "category": "shape",
                "split": "train",
                "start": None,
                "end": None,
            },
        ],
    )
    questions = load_benchmark(BenchmarkSpec.parse(f"sample:{tmp_path}", split="eval"))
    assert [q.question_id for q in questions] == ["q1", "q2"]
    assert questions[0].video == str(tmp_path / "videos/c1.mp4")
    assert questions[1].answer == "D" and (questions[1].start, questions[1].end) == (120.0, 140.0)
    assert questions[1].category == "timestamp" and questions[1].num_options == 4
    assert len(load_benchmark(BenchmarkSpec.parse(f"sample:{tmp_path}"))) == 3


def test_sample_layout_rejects_an_answer_outside_the_options(tmp_path):
    write_jsonl(
        tmp_path / "questions.jsonl",
        [
            {
                "question_id": "q1",
                "video": "v.mp4",
                "question": "?",
                "options": ["a", "b"],
                "answer": "C",
                "category": "color",
                "split": "eval",
            }
        ],
    )
    with pytest.raises(BenchmarkError, match=r"questions.jsonl:1: answer 'C'"):
        load_benchmark(BenchmarkSpec.parse(f"sample:{tmp_path}"))


def test_mvbench_layout_maps_answer_text_to_letter_and_task_folder(tmp_path):
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / "action_sequence.json").write_text(
        json.dumps(
            [
                {
                    "video": "A1B2C.mp4",
                    "question": "What did the person do first?",
                    "candidates": ["Opened the door.", "Sat on the bed.", "Took a cup."],
                    "answer": "Took a cup.",
                    "start": 3.5,
                    "end": 11.0,
                },
            ]
        )
    )
    (tmp_path / "json" / "moving_direction.json").write_text(
        json.dumps(
            [
                {
                    "video": "video_10001.mp4",
                    "question": "Which direction?",
                    "candidates": ["left", "up"],
                    "answer": "left",
                },
            ]
        )
    )
    folder = tmp_path / "video" / "star" / "Charades_segment"
    folder.mkdir(parents=True)
    (folder / "A1B2C.mp4").write_bytes(b"")
    questions = load_benchmark(BenchmarkSpec.parse(f"mvbench:{tmp_path}"))
    by_task = {q.task: q for q in questions}
    assert by_task["action_sequence"].answer == "C"
    assert by_task["action_sequence"].video == str(folder / "A1B2C.mp4")
    assert (by_task["action_sequence"].start, by_task["action_sequence"].end) == (3.5, 11.0)
    assert by_task["moving_direction"].answer == "A"
    assert by_task["moving_direction"].video.endswith("clevrer/video_validation/video_10001.mp4")
    assert by_task["moving_direction"].category == "moving_direction"


def test_mvbench_answer_must_be_a_candidate(tmp_path):
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / "object_shuffle.json").write_text(
        json.dumps([{"video": "x.mp4", "question": "Where?", "candidates": ["a", "b"], "answer": "c"}])
    )
    with pytest.raises(BenchmarkError, match=r"object_shuffle.json\[0\]: answer 'c' is none of"):
        load_benchmark(BenchmarkSpec.parse(f"mvbench:{tmp_path}"))


VIDEOMME_ROWS = [
    {
        "video_id": "001",
        "duration": "short",
        "domain": "Knowledge",
        "sub_category": "Humanity & History",
        "url": "https://example.invalid/v1",
        "videoID": "fFjv93ACGo8",
        "question_id": "001-1",
        "task_type": "Counting Problem",
        "question": "How many shapes appear?",
        "options": ["A. One.", "B. Two.", "C. Three.", "D. Four."],
        "answer": "C",
    },
    {
        "video_id": "002",
        "duration": "long",
        "domain": "Sports",
        "sub_category": "Football",
        "url": "https://example.invalid/v2",
        "videoID": "N1cdUjctpG8",
        "question_id": "002-2",
        "task_type": "Temporal Reasoning",
        "question": "What happens last?",
        "options": ["A. A goal.", "B. A foul.", "C. A corner.", "D. A save."],
        "answer": "A",
    },
]


def test_videomme_parquet_layout(tmp_path):
    (tmp_path / "videomme").mkdir()
    pd.DataFrame(VIDEOMME_ROWS).to_parquet(tmp_path / "videomme" / "test-00000-of-00001.parquet")
    questions = load_benchmark(BenchmarkSpec.parse(f"videomme:{tmp_path}"))
    assert [q.question_id for q in questions] == ["001-1", "002-2"]
    first = questions[0]
    assert first.options == ("One.", "Two.", "Three.", "Four.")
    assert first.answer == "C" and first.category == "Counting Problem" and first.task == "short"
    assert first.video == str(tmp_path / "data" / "fFjv93ACGo8.mp4")
    long_only = load_benchmark(BenchmarkSpec.parse(f"videomme:{tmp_path}", split="long"))
    assert [q.question_id for q in long_only] == ["002-2"]


def test_videomme_json_layout(tmp_path):
    (tmp_path / "videomme.json").write_text(json.dumps(VIDEOMME_ROWS))
    questions = load_benchmark(BenchmarkSpec.parse(f"videomme:{tmp_path}"))
    assert questions[1].options[0] == "A goal." and questions[1].answer == "A"


def test_egoschema_layout_scores_only_the_answered_subset(tmp_path):
    rows = [
        {
            "q_uid": f"uid-{i}",
            "google_drive_id": f"g{i}",
            "question": f"What is c doing {i}?",
            **{f"option {k}": f"option text {k}" for k in range(5)},
        }
        for i in range(3)
    ]
    (tmp_path / "questions.json").write_text(json.dumps(rows))
    (tmp_path / "subset_answers.json").write_text(json.dumps({"uid-0": 4, "uid-2": 0}))
    questions = load_benchmark(BenchmarkSpec.parse(f"egoschema:{tmp_path}"))
    assert [(q.question_id, q.answer) for q in questions] == [("uid-0", "E"), ("uid-2", "A")]
    assert questions[0].num_options == 5
    assert questions[0].video == str(tmp_path / "videos" / "uid-0.mp4")


@pytest.mark.parametrize("spec", ["sample", "nope:/x", "mvbench:", "videomme"])
def test_bad_specs_are_named(spec):
    with pytest.raises(BenchmarkError, match="KIND:PATH"):
        BenchmarkSpec.parse(spec)


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(BenchmarkError, match="does not exist"):
        load_benchmark(BenchmarkSpec.parse(f"sample:{tmp_path / 'absent'}"))


def test_benchmark_on_s3_is_downloaded_once_into_the_cache(s3_server, s3_bucket, tmp_path):
    from kangaroo.storage.object_store import ObjectStore

    source = tmp_path / "source"
    (source / "json").mkdir(parents=True)
    (source / "json" / "action_count.json").write_text(
        json.dumps(
            [{"video": "c.mp4", "question": "How many times?", "candidates": ["1", "2", "3"], "answer": "2"}]
        )
    )
    (source / "video" / "perception" / "videos").mkdir(parents=True)
    (source / "video" / "perception" / "videos" / "c.mp4").write_bytes(b"not really a video")
    store = ObjectStore(s3_server.endpoint, s3_server.access_key, s3_server.secret_key)
    store.upload_dir(source, f"s3://{s3_bucket}/benchmarks/mvbench")
    cache = tmp_path / "cache"
    spec = BenchmarkSpec.parse(f"mvbench:s3://{s3_bucket}/benchmarks/mvbench")
    questions = load_benchmark(spec, cache_dir=cache, store=store)
    local = cache / s3_bucket / "benchmarks" / "mvbench"
    assert questions[0].answer == "B"
    assert questions[0].video == str(local / "video" / "perception" / "videos" / "c.mp4")
    assert (local / "video" / "perception" / "videos" / "c.mp4").read_bytes() == b"not really a video"
    s3_server.boto_client().delete_object(Bucket=s3_bucket, Key="benchmarks/mvbench/json/action_count.json")
    again = load_benchmark(spec, cache_dir=cache, store=store)  # served from the completed cache
    assert [q.question_id for q in again] == [q.question_id for q in questions]
