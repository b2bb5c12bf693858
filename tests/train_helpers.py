"""Small corpora for training tests: packed stills only (the cheapest corpus to make, enough rows for two
ranks), and a small sample corpus with motion clips."""

from __future__ import annotations

import json
from pathlib import Path

from kangaroo.config import load_params

ROOT = Path(__file__).resolve().parents[1]


def pack_still_images(corpus_dir: Path, packed_dir: Path) -> Path:
    """120 generated stills + their questions, packed with the tiny profile into PACKED_DIR."""
    from kangaroo.packed.pack import pack_training_data
    from kangaroo.synth.images import write_images
    from kangaroo.synth.settings import SynthSettings

    rows, questions = write_images(
        corpus_dir,
        SynthSettings(seed=3, num_images=120, shape_radius_fraction=0.12, image_shape_weights=[1, 1, 1, 1]),
    )  # 2 ranks: >= 2 packed rows
    (corpus_dir / "images.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    # the tiny stage 1 aligns on the still questions
    (corpus_dir / "image_questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    pack_training_data(load_params(ROOT / "params.yaml", "tiny"), corpus_dir, packed_dir, show_progress=False)
    return packed_dir


def write_small_motion_corpus(
    out: Path, synth, num_motion_clips: int = 16, motion_eval_fraction: float = 0.25
) -> Path:
    """A sample corpus in OUT: 24 clips, 4 stills, 30 s long clips and NUM_MOTION_CLIPS motion clips, a
    MOTION_EVAL_FRACTION of them held out; the rest of SYNTH (a profile's `synth` settings) unchanged."""
    from kangaroo.synth.corpus import write_corpus

    settings = synth.model_copy(
        update={
            "num_videos": 24,
            "num_images": 4,
            "num_motion_clips": num_motion_clips,
            "motion_eval_fraction": motion_eval_fraction,
            "long_video_seconds": 30.0,
        }
    )
    write_corpus(out, settings)
    return out
