"""A small packed corpus for training tests: stills only (the cheapest corpus to make), enough rows for two
ranks."""

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
