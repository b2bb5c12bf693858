"""Caption-tag pre-training of the tiny vision tower: tags from captions, a tower that learns them, and the
first curriculum stage loading it."""

import json
from pathlib import Path

import pytest
import torch

from kangaroo.config import load_params
from kangaroo.model import build_model_and_processor
from kangaroo.synth.images import write_images
from kangaroo.synth.settings import SynthSettings
from kangaroo.train.errors import TrainInputError
from kangaroo.train.vision_tags import (
    _cell_targets,
    build_tag_vocabulary,
    caption_terms,
    pretrain_vision_tower,
    tag_targets,
    tower_overrides,
)

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
STEPS = 1500  # ~20 s on 2 cores: held-out tags rise clearly above the untrained tower


def test_caption_terms_are_words_and_pairs_inside_a_phrase():
    terms = caption_terms("A cyan square, a purple triangle and a white star on a dark blue background.")
    assert {"cyan", "square", "cyan square", "purple triangle", "white star", "dark blue"} <= terms
    assert {"blue background", "dark"} <= terms
    assert "square purple" not in terms  # a comma ends the phrase
    assert "triangle white" not in terms  # so does a stopword ("and")
    assert not terms & {"a", "and", "on"}


def test_tag_vocabulary_keeps_frequent_terms_most_frequent_first():
    captions = ["A red circle.", "A red square.", "A blue circle.", "A red circle on grass."]
    assert build_tag_vocabulary(captions, min_count=2, max_tags=10) == ["circle", "red", "red circle"]
    assert build_tag_vocabulary(captions, min_count=2, max_tags=2) == ["circle", "red"]
    targets = tag_targets(["A red circle.", "A blue square."], ["circle", "red", "red circle"])
    assert targets.tolist() == [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]


def test_region_targets_put_each_object_s_tags_on_the_token_under_its_centre():
    tags = ["background", "circle", "red", "red circle", "blue", "square", "blue square"]
    # 128 x 96 letterboxed into 64 x 64: scale 0.5 -> 64 x 48 at y offset 8; 16 px patches, a 4 x 4 grid
    row = {
        "width": 128,
        "height": 96,
        "shapes": [
            {"shape": "circle", "color": "red", "x": 0.1, "y": 0.1},  # pixel (6.4, 12.8): token 0
            {"shape": "square", "color": "blue", "x": 0.9, "y": 0.9},  # pixel (57.6, 51.2): token 15
        ],
    }
    unannotated = {"width": 64, "height": 64}
    targets, columns = _cell_targets([row, unannotated], tags, patch=16, size=64, policy="pad")
    assert [tags[c] for c in columns] == ["circle", "red", "red circle", "blue", "square", "blue square"]
    assert targets.shape == (2, 16, 6)
    on = {(token, tags[columns[c]]) for token, c in targets[0].nonzero().tolist()}
    assert on == {
        (0, "circle"),
        (0, "red"),
        (0, "red circle"),
        (15, "blue"),
        (15, "square"),
        (15, "blue square"),
    }
    assert not targets[1].any()


@pytest.fixture(scope="module")
def stills(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stills")
    rows, _ = write_images(
        out,
        SynthSettings(seed=5, num_images=1200, shape_radius_fraction=0.12, image_shape_weights=[1, 1, 1, 1]),
    )
    with (out / "images.jsonl").open("w") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
    return out


@pytest.fixture(scope="module")
def tower(stills, tmp_path_factory) -> tuple[Path, dict]:
    params = load_params(PARAMS, "tiny", [f"train.vision_pretrain.steps={STEPS}"])
    out = tmp_path_factory.mktemp("tower")
    return out, pretrain_vision_tower(params, stills, out)


def test_pretrained_tower_tags_held_out_stills_far_better_than_untrained(tower):
    out, summary = tower
    assert summary["enabled"] and summary["steps"] == STEPS
    assert summary["final_loss"] < summary["first_loss"]
    # colours, shapes, backgrounds and colour-shape pairs: a few dozen tags
    tags = json.loads((out / "tags.json").read_text())
    assert {"red", "square", "red square", "background"} <= set(tags)
    # measured 0.38 vs 0.22 at these steps with tiny's region targets + place head (caption tags alone: 0.33)
    assert summary["held_out_tag_map"] > summary["held_out_tag_map_untrained"] + 0.1
    # colour-shape pairs on their own, the figure that shows whether the shapes have clicked: they learn, but
    # lag the single-word tags at these steps (measured 0.22 vs 0.12 untrained, all tags 0.38)
    assert summary["held_out_pair_tag_map"] > summary["held_out_pair_tag_map_untrained"] + 0.03
    assert summary["held_out_pair_tag_map"] < summary["held_out_tag_map"]
    assert json.loads((out / "summary.json").read_text()) == summary


def test_fresh_model_loads_the_pretrained_tower(tower):
    out, _ = tower
    overrides = tower_overrides(out)
    assert overrides == [f"model.vision_model={out.resolve()}"]
    model, _ = build_model_and_processor(load_params(PARAMS, "tiny", overrides).model)
    from safetensors.torch import load_file

    saved = load_file(out / "model.safetensors")
    loaded = model.vision_tower.state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[name], loaded[name]) for name in saved)


def test_disabled_pretraining_writes_only_a_record(stills, tmp_path):
    params = load_params(PARAMS, "paper", ["train.vision_pretrain.enabled=false"])
    summary = pretrain_vision_tower(params, stills, tmp_path / "tower")
    assert summary["enabled"] is False
    assert not (tmp_path / "tower" / "config.json").exists()
    assert tower_overrides(tmp_path / "tower") == [] and tower_overrides(None) == []


def test_missing_or_tiny_corpus_is_a_clear_error(stills, tmp_path):
    params = load_params(PARAMS, "tiny", ["train.vision_pretrain.batch_size=100000"])
    with pytest.raises(TrainInputError, match="images.jsonl: missing"):
        pretrain_vision_tower(params, tmp_path, tmp_path / "out")
    with pytest.raises(TrainInputError, match="needs at least one batch"):
        pretrain_vision_tower(params, stills, tmp_path / "out")
