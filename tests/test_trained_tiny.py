"""Positive control of the evaluation: a tiny model trained on the held-out answers scores near 1.

The bias control (tests/test_eval_model.py) shows a random model at chance, so the evaluation does not
invent skill; this shows it does not hide skill. `kangaroo.eval.positive_control.answer_key_corpus` writes
a view of a small sample corpus whose training questions are its held-out ones; packed, one short
instruction-tuning run of the tiny profile's model (fresh weights, 32 px, 4 frames at 0.5 fps to fit the test
budget) learns them, and the normal evaluation of the held-out split must score it >= 0.9. A mismatch
between how the instruction data renders a question and how the scorer reads it (prompt, option order,
reply, likelihood continuation) fails it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from train_helpers import write_small_motion_corpus

from kangaroo.config import load_params
from kangaroo.eval.benchmarks import BenchmarkSpec, load_benchmark

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
STAGE = "instruction_tuning"
STEPS = 80
RECIPE = [
    f"train.stages.{STAGE}.sources=[qa]",
    f"train.stages.{STAGE}.trainable=[temporal,patchify,projector,llm]",
    f"train.stages.{STAGE}.qa_repeats=1",
    f"train.stages.{STAGE}.resolution=32",
    f"train.stages.{STAGE}.max_frames=4",
    f"train.stages.{STAGE}.sampling_fps=0.5",
    f"train.stages.{STAGE}.context_length=512",
    f"train.stages.{STAGE}.batch_tokens=1024",
    f"train.stages.{STAGE}.checkpoint_every=0",
    "eval.num_frames=4",
    "eval.max_fps=0.5",
    "eval.frame_size=32",
    "eval.batch_size=32",
    "eval.temporal_controls=[]",
]


def test_positive_control_trained_on_the_answers_scores_near_one(tmp_path):
    from kangaroo.eval.positive_control import answer_key_corpus
    from kangaroo.eval.runner import evaluate_checkpoint
    from kangaroo.packed.pack import pack_training_data
    from kangaroo.train.loop import train_stage

    params = load_params(ROOT / "params.yaml", "tiny", RECIPE)
    corpus = tmp_path / "corpus"
    write_small_motion_corpus(corpus, params.synth)
    view = answer_key_corpus(corpus, tmp_path / "answer-key")
    held_out = load_benchmark(BenchmarkSpec.parse(f"sample:{corpus}", "eval"))
    assert len(held_out) >= 30
    pack_training_data(params, view, tmp_path / "packed", show_progress=False)
    train_stage(params, STAGE, tmp_path / "run", data=tmp_path / "packed", init="scratch", max_steps=STEPS,
                show_progress=False)  # fmt: skip
    result = evaluate_checkpoint(
        tmp_path / "run" / "model",
        f"sample:{corpus}",
        tmp_path / "eval",
        params,
        ("likelihood",),
        progress=False,
    )
    assert result.metrics["num_questions"] == len(held_out)
    assert result.accuracy >= 0.9, result.metrics["per_category"]
