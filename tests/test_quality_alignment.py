"""Caption-video alignment end to end on a small sample corpus: the tower pre-trained on its stills, the
tiny SigLIP trained over it, the clips captioned with alignment embeddings, and the gate: the clean dataset
passes, the same dataset with 20% of its captions shuffled between videos fails on alignment, and the report
lists the shuffled rows among the worst-aligned, with frame strips."""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import pytest

from kangaroo.config import load_params
from kangaroo.curation.alignment import AlignmentScorer, load_alignment
from kangaroo.curation.alignment.train import prepare_alignment_model
from kangaroo.curation.captioning import caption_curated
from kangaroo.curation.ledger import LedgerRow, write_ledger
from kangaroo.quality.runner import run_quality_gate
from kangaroo.synth.corpus import write_corpus
from kangaroo.train.vision_tags import pretrain_vision_tower

# A corpus, a tower and a SigLIP trained here: minutes on an idle machine, more when it is shared.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]
PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
OVERRIDES = [
    "synth.num_videos=48",
    "synth.num_images=3000",
    "synth.num_long_videos=0",
    "synth.num_motion_clips=0",  # motion clips are never curated or captioned
    "train.vision_pretrain.steps=1500",
    # Caption tags only: at 1,500 steps the tiny profile's region-supervised tower transfers less well from
    # stills to clip frames (its aligner: held-out stills 0.82 after 200 steps, and after 400 the clean clips
    # miss the 5% bound). This test is about the aligner and the gate; `make run` checks the tiny tower's
    # own gate (1 of 138 clean clips misaligned, docs/training.md).
    "train.vision_pretrain.region_loss_weight=0",
    "train.vision_pretrain.place_loss_weight=0",
    "quality.min_rows=10",
    "quality.max_misaligned_fraction=0.05",  # the shared value; tiny loosens it for its alt-text captions
    # precise captions are told apart after 200 steps; the alt text of `make run` needs the default 1,000
    "caption.alignment.train.steps=200",
    # a precise captioner gives look-alike clips the same sentence: duplicates are not this test's subject
    "quality.max_exact_duplicate_fraction=0.5",
    "quality.max_near_duplicate_fraction=0.5",
]


@pytest.fixture(scope="module")
def captioned(tmp_path_factory) -> tuple[Path, Path, object]:
    """(dataset folder, alignment model folder, params) of a captioned sample corpus."""
    params = load_params(PARAMS, "tiny", OVERRIDES)
    root = tmp_path_factory.mktemp("aligned")
    corpus = root / "corpus"
    write_corpus(corpus, params.synth)
    pretrain_vision_tower(params, corpus, root / "tower")
    summary = prepare_alignment_model(params, corpus, root / "tower", root / "alignment")
    assert summary["source"] == "trained" and summary["train_images"] > 1000
    truth = [json.loads(line) for line in (corpus / "ground_truth.jsonl").read_text().splitlines()]
    rows = [
        LedgerRow(str(corpus / t["video"]), t["video"], t["expected_status"], t["expected_reason"],
                  duration=t["duration"], fps=t["fps"], width=t["width"], height=t["height"])
        for t in truth
    ]  # fmt: skip
    write_ledger(root / "curated" / "ledger.jsonl", rows)
    # A precise captioner's captions (the first sentence of the corpus's reference caption: shapes, colours,
    # background) as sidecars; the noisy alt-text source captions are beyond the tiny model (params.yaml).
    for t in truth:
        if t["expected_status"] == "kept":
            (corpus / t["video"]).with_suffix(".txt").write_text(t["reference_caption"].split(". ")[0] + ".")
    caption_curated(root / "curated", root / "dataset", params, alignment=load_alignment(root / "alignment"))
    return root / "dataset", root / "alignment", params


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_alignment_model_is_a_stock_siglip_folder_that_tells_captions_apart(captioned):
    _, model_dir, _ = captioned
    summary = json.loads((model_dir / "summary.json").read_text())
    assert summary["own_beats_random_other"] > 0.85  # held-out stills vs a random other still
    assert {"config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json"} <= {
        p.name for p in model_dir.iterdir()
    }
    scorer = AlignmentScorer.load(model_dir)
    assert type(scorer.model).__name__ == "SiglipModel"
    texts = scorer.text_embeddings(
        ["A red circle on a white background.", "A blue star on a black background."]
    )
    assert texts.shape[0] == 2 and abs(float((texts**2).sum(axis=1)[0]) - 1.0) < 1e-4


def test_every_row_stores_its_alignment(captioned):
    dataset, _, _ = captioned
    rows = read_jsonl(dataset / "dataset.jsonl")
    assert len(rows) >= 20
    for row in rows:
        assert set(row["alignment"]) == {"model", "score", "video_embedding"}
        assert -1.0 <= row["alignment"]["score"] <= 1.0


def test_clean_dataset_passes_and_shuffled_captions_fail_on_alignment(captioned, tmp_path):
    dataset, model_dir, params = captioned
    clean = run_quality_gate(
        dataset, tmp_path / "clean", params.quality, alignment_model=model_dir, params=params
    )
    assert clean.success, [(o.name, o.observed, o.offenders[:3]) for o in clean.outcomes if not o.success]
    assert {"caption_video_alignment", "alignment_scored"} <= {o.name for o in clean.outcomes}

    rows = read_jsonl(dataset / "dataset.jsonl")
    rng = random.Random(0)
    chosen = sorted(rng.sample(range(len(rows)), k=round(0.2 * len(rows))))
    captions = [rows[i]["caption"] for i in chosen]
    for i, caption in zip(chosen, captions[1:] + captions[:1], strict=True):  # a cycle: nobody keeps theirs
        rows[i]["caption"] = caption
    shuffled_keys = {rows[i]["key"] for i in chosen}
    shuffled = tmp_path / "shuffled"
    shutil.copytree(dataset, shuffled)
    (shuffled / "dataset.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    gate = run_quality_gate(
        shuffled, tmp_path / "report", params.quality, alignment_model=model_dir, params=params
    )
    assert gate.failed_expectations == ["caption_video_alignment"]
    outcome = next(o for o in gate.outcomes if o.name == "caption_video_alignment")
    offenders = [o.row_id for o in outcome.offenders]
    # the worst row is a shuffled one, and most shuffled rows are blamed (a clean row may be too: the model's
    # own error, which max_misaligned_fraction tolerates)
    assert offenders[0] in shuffled_keys
    assert sum(key in shuffled_keys for key in offenders) >= 0.6 * len(shuffled_keys)

    page = gate.html_path.read_text()
    worst = page.split("<h3>Worst caption-video alignment</h3>")[1].split("<h3>")[0]
    listed = re.findall(r"<td><code>([^<]+)</code></td>", worst)
    assert listed[0] in shuffled_keys and len(set(listed[: len(shuffled_keys)]) & shuffled_keys) >= 0.6 * len(
        shuffled_keys
    )
    assert worst.count('src="data:image/jpeg;base64,') == len(listed)  # a frame strip per listed row
    assert 'alt="Caption-video alignment"' in page
    assert "Rejected: text_coverage" in page and "Kept videos (random sample)" in page
