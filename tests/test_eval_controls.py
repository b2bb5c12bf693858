"""Temporal controls: what each perturbation does to a question's frames; the evaluation reports them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from train_helpers import write_small_motion_corpus

from kangaroo.eval.controls import TEMPORAL_CONTROLS, controlled_sampler, perturb_frames
from kangaroo.eval.frames import QuestionFrames

ROOT = Path(__file__).resolve().parents[1]


def _frames(count: int = 6) -> QuestionFrames:
    pictures = np.stack([np.full((4, 4, 3), 10 * i, np.uint8) for i in range(count)])
    stamps = np.arange(count, dtype=np.float64) * 1.5
    return QuestionFrames(pictures, stamps, stamps + 10.0, "pyav")


def test_shuffled_frames_move_pictures_but_keep_the_time_axis():
    original = _frames()
    shuffled = perturb_frames(original, "shuffled_frames", "q_00001")
    order = [int(frame[0, 0, 0]) // 10 for frame in shuffled.frames]
    assert sorted(order) == list(range(6)) and order != list(range(6))
    np.testing.assert_array_equal(shuffled.timestamps, original.timestamps)
    again = perturb_frames(original, "shuffled_frames", "q_00001")
    np.testing.assert_array_equal(again.frames, shuffled.frames)  # seeded by the question id
    other = perturb_frames(original, "shuffled_frames", "q_00002")
    assert not np.array_equal(other.frames, shuffled.frames)


def test_reversed_frames_and_constant_timestamps():
    original = _frames()
    backwards = perturb_frames(original, "reversed_frames", "q")
    assert [int(frame[0, 0, 0]) // 10 for frame in backwards.frames] == [5, 4, 3, 2, 1, 0]
    np.testing.assert_array_equal(backwards.timestamps, original.timestamps)
    constant = perturb_frames(original, "constant_timestamps", "q")
    np.testing.assert_array_equal(constant.frames, original.frames)
    assert set(constant.timestamps.tolist()) == {0.0}
    with pytest.raises(ValueError, match="unknown temporal control"):
        perturb_frames(original, "upside_down", "q")


def test_repeated_frame_shows_one_seeded_frame_at_every_timestamp():
    original = _frames()
    chosen = set()
    for key in ("q_00001", "q_00002", "q_00003", "q_00004", "q_00005"):
        repeated = perturb_frames(original, "repeated_frame", key)
        values = {int(frame[0, 0, 0]) // 10 for frame in repeated.frames}
        assert len(values) == 1 and repeated.frames.shape == original.frames.shape
        np.testing.assert_array_equal(repeated.timestamps, original.timestamps)
        np.testing.assert_array_equal(perturb_frames(original, "repeated_frame", key).frames, repeated.frames)
        chosen |= values
    assert len(chosen) > 1  # the frame depends on the question, not always the first or the middle one


def test_a_single_frame_cannot_be_shuffled_into_anything_else():
    one = _frames(1)
    np.testing.assert_array_equal(perturb_frames(one, "shuffled_frames", "q").frames, one.frames)


@pytest.fixture(scope="module")
def controlled_result(tmp_path_factory):
    """A random tiny model on a few motion clips, with every control on."""
    from kangaroo.config import load_params
    from kangaroo.eval.runner import evaluate_checkpoint
    from kangaroo.model.build import build_model_and_processor, save_model_and_processor

    params = load_params(ROOT / "params.yaml", "tiny")
    corpus = tmp_path_factory.mktemp("corpus")
    write_small_motion_corpus(corpus, params.synth)
    model, processor = build_model_and_processor(params.model)
    checkpoint = save_model_and_processor(model, processor, tmp_path_factory.mktemp("random") / "model")
    params = params.model_copy(
        update={"eval": params.eval.model_copy(update={"temporal_controls": list(TEMPORAL_CONTROLS)})}
    )
    out = tmp_path_factory.mktemp("eval")
    return evaluate_checkpoint(checkpoint, f"sample:{corpus}", out, params, ("likelihood",), progress=False)


def test_metrics_report_every_control_beside_the_plain_figures(controlled_result):
    metrics = controlled_result.metrics
    controls = metrics["temporal_controls"]
    assert set(controls) == set(TEMPORAL_CONTROLS)
    for block in controls.values():
        assert block["num_questions"] == metrics["num_questions"]
        assert set(block["per_category"]) == set(metrics["per_category"])
        for name, entry in block["per_category"].items():
            assert set(entry) == {"accuracy", "chance", "num_questions"}
            assert entry["num_questions"] == metrics["per_category"][name]["num_questions"]
    flat = controlled_result.flat_metrics()
    assert "shuffled_frames_accuracy_direction" in flat


def test_the_perturbed_frames_reach_the_model(controlled_result, tmp_path):
    """Scrambling the time axis changes what a (random) model computes on multi-frame questions: the option
    log-probabilities differ from the plain pass, so the control is not a no-op."""
    from kangaroo.config import load_params
    from kangaroo.eval.benchmarks import BenchmarkSpec, load_benchmark
    from kangaroo.eval.frames import FrameSampler
    from kangaroo.eval.runner import evaluate_model
    from kangaroo.model.build import load_model_and_processor

    params = load_params(ROOT / "params.yaml", "tiny")
    checkpoint = Path(controlled_result.metrics["run"]["checkpoint"])
    corpus = Path(controlled_result.metrics["run"]["benchmark_location"])
    questions = [
        q for q in load_benchmark(BenchmarkSpec.parse(f"sample:{corpus}", "eval")) if "motion" in q.video
    ][:4]
    model, processor = load_model_and_processor(checkpoint)
    sampler = FrameSampler(params.video, params.eval.num_frames, params.eval.max_fps, processor.image_size)
    settings = params.eval.model_copy(
        update={"temporal_controls": ["reversed_frames", "constant_timestamps"]}
    )
    plain_settings = settings.model_copy(update={"temporal_controls": []})
    result = evaluate_model(
        model,
        processor,
        questions,
        plain_settings,
        sampler,
        processor.image_size,
        ("likelihood",),
        progress=False,
    )
    plain = [p["likelihood"]["option_logprobs"] for p in result.predictions]
    for control in ("reversed_frames", "constant_timestamps", "repeated_frame"):
        controlled = controlled_sampler(sampler, control)
        perturbed = evaluate_model(
            model, processor, questions, plain_settings, controlled, processor.image_size, ("likelihood",),
            progress=False,
        )  # fmt: skip
        changed = [p["likelihood"]["option_logprobs"] for p in perturbed.predictions]
        assert all(a != b for a, b in zip(plain, changed, strict=True)), control
