"""The product's smoke test: the real KFP pipeline, run by KFP's local runner on a small sample corpus with
the tiny profile, from raw videos to a registered, evaluated model; then again, served from the cache; then
with one evaluation setting changed, which re-runs evaluation and nothing upstream of it."""

import json
import logging
from pathlib import Path

import pytest
import torch

from kangaroo.config import load_params
from kangaroo.train.settings import STAGE_NAMES
from pipelines.run_local import latest_run_dir, run_local

pytestmark = pytest.mark.slow

# A small corpus (every planted bad kind once) and two optimizer steps per stage: the same DAG, components
# and library code as `make run`, sized for the test suite.
OVERRIDES = [
    "synth.num_videos=24",
    "curation.shard_size=12",  # two shards: curated and captioned by their own tasks, then merged
    # A 20-step tower on 30 stills cannot align captions to videos: the alignment model step, the stored
    # embeddings and the gate's alignment checks are covered by test_quality_alignment.py and `make run`.
    "caption.alignment.enabled=false",
    "synth.num_images=40",
    "synth.num_motion_clips=8",
    "eval.num_frames=4",
    "train.vision_pretrain.steps=20",
    "train.vision_pretrain.batch_size=8",  # 30 train stills
] + [f"train.stages.{stage}.max_steps=2" for stage in STAGE_NAMES]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("local-run")
    outputs = run_local(work, "tiny", OVERRIDES)
    return work, outputs


def test_every_input_video_is_accounted_for(first_run):
    work, _ = first_run
    run_dir = latest_run_dir(work / "pipeline_root")
    videos = sorted(p.name for p in (work / "corpus" / "videos").iterdir())
    ledger = [json.loads(line) for line in (run_dir / "merge-curation" / "curated" / "ledger.jsonl").open()]
    assert sorted(Path(row["video"]).name for row in ledger) == videos
    assert {row["status"] for row in ledger} == {"kept", "rejected"}
    truth = {
        json.loads(line)["clip_id"]: json.loads(line)
        for line in (work / "corpus" / "ground_truth.jsonl").open()
    }
    for row in ledger:
        expected = truth[Path(row["video"]).stem]
        assert row["status"] == expected["expected_status"], row


def test_registered_model_sees_through_the_pretrained_tower(first_run):
    """The tiny profile pre-trains the vision tower on caption tags, the first stage loads it and every stage
    keeps it frozen: the registered model's tower is that tower, weight for weight."""
    from safetensors.torch import load_file

    work, outputs = first_run
    run_dir = latest_run_dir(work / "pipeline_root")
    (tower_dir,) = list(run_dir.glob("vision-tower-pretraining/tower"))
    assert json.loads((tower_dir / "summary.json").read_text())["enabled"] is True
    tower = load_file(tower_dir / "model.safetensors")
    model = load_file(Path(outputs["model"]) / "model.safetensors")
    for name, value in tower.items():
        assert torch.equal(model[f"vision_tower.{name}"], value), name


def test_quality_report_is_published(first_run):
    _, outputs = first_run
    html = Path(outputs["quality report (HTML)"]).read_text()
    assert "caption_not_empty" in html and "data:image/png;base64," in html
    assert "PASS" in Path(outputs["quality summary"]).read_text().upper()


def test_registered_model_loads_and_carries_its_lineage(first_run):
    """The registry's card names the dataset version the run pushed with DVC, the evaluation's accuracy and
    the hash of the weights it copied."""
    import hashlib

    import yaml
    from transformers import AutoModelForCausalLM

    from kangaroo.model import register_auto_classes
    from kangaroo.model.registry import CARD_FILE

    work, outputs = first_run
    register_auto_classes()
    model_dir = Path(outputs["model"])
    card = json.loads((model_dir / CARD_FILE).read_text())
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    assert type(model).__name__ == "KangarooForConditionalGeneration"
    run_dir = latest_run_dir(work / "pipeline_root")
    (dvc_file,) = (run_dir / "dataset-versioning").rglob("dataset.dvc")
    pushed = yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"]
    assert card["dataset_version"] == pushed and pushed.endswith(".dir")
    metrics = json.loads(Path(outputs["evaluation metrics"]).read_text())
    assert card["accuracy"] == metrics["accuracy"]
    weights = (model_dir / "model.safetensors").read_bytes()
    assert card["sha256:model.safetensors"] == hashlib.sha256(weights).hexdigest()


def test_evaluation_metrics_agree_with_the_predictions(first_run):
    """metrics.json is recomputed from predictions.jsonl: the headline (likelihood) accuracy, chance, the
    per-category counts, and the temporal controls the tiny profile turns on."""
    _, outputs = first_run
    metrics = json.loads(Path(outputs["evaluation metrics"]).read_text())
    rows = [json.loads(line) for line in Path(outputs["predictions"]).read_text().splitlines()]
    assert len(rows) == metrics["num_questions"] > 0
    hits = [row["likelihood"]["prediction"] == row["target"] for row in rows]
    assert metrics["headline_mode"] == "likelihood"
    assert metrics["accuracy"] == pytest.approx(sum(hits) / len(rows))
    assert metrics["chance"] == pytest.approx(sum(1 / len(row["options"]) for row in rows) / len(rows))
    for category, entry in metrics["per_category"].items():
        members = [hit for hit, row in zip(hits, rows, strict=True) if row["category"] == category]
        assert entry["num_questions"] == len(members)
        assert entry["accuracy"] == pytest.approx(sum(members) / len(members))
    controls = metrics["temporal_controls"]
    tiny = load_params(Path(__file__).resolve().parents[1] / "params.yaml", "tiny")
    assert set(controls) == set(tiny.eval.temporal_controls) and controls
    for block in controls.values():
        assert block["num_questions"] == len(rows)
        assert {name: e["num_questions"] for name, e in block["per_category"].items()} == {
            name: e["num_questions"] for name, e in metrics["per_category"].items()
        }


def test_second_run_is_served_from_the_cache(first_run, caplog):
    work, first_outputs = first_run
    with caplog.at_level(logging.INFO):
        outputs = run_local(work, "tiny", OVERRIDES)
    hits = {m.split()[1] for r in caplog.records if "cache hit" in (m := r.getMessage())}
    expected = {"plan-shards", "shard-curation", "shard-captioning", "merge-curation", "caption-merge"}
    expected |= {"alignment-model-preparation", "quality-gate"}
    expected |= {"pack-data", "dataset-versioning", "plan-training", "model-evaluation", "register-model"}
    expected |= {"vision-tower-pretraining"}
    # one stage-training task per stage ran (its in-pod placement branch), each from the cache
    assert len({hit for hit in hits if hit.startswith("stage-training")}) == len(STAGE_NAMES), hits
    # Everything but the run summary and the list of outputs (caching off on purpose) comes from the cache.
    assert expected <= hits, expected - hits
    # ...and the run still says where its report, model and metrics are: where the first run wrote them.
    for label in ("quality report (HTML)", "quality summary", "model", "evaluation metrics", "predictions"):
        assert outputs[label] == first_outputs[label], label
        assert Path(outputs[label]).exists(), label
    assert Path(outputs["run outputs"]).parent.parent == latest_run_dir(work / "pipeline_root")
    assert first_outputs["model"] in Path(outputs["run outputs"]).read_text()


# never cached: the config resolver (records the code version), the inputs' fingerprint (their content), the
# run summary, the list of outputs
UNCACHED = {"resolve-step-configs", "fingerprint-inputs", "publish-run-summary", "list-run-outputs"}


def test_an_eval_edit_reruns_only_evaluation_and_says_so(first_run, caplog):
    """Only the evaluate step's resolved config changes, so only it (and the registry entry carrying its
    accuracy) runs again; curation, captioning, the gate, packing and all five stages come from the cache."""
    work, first_outputs = first_run
    with caplog.at_level(logging.INFO):
        outputs = run_local(work, "tiny", [*OVERRIDES, "eval.batch_size=32"])
    (summary,) = [r for r in caplog.records if r.getMessage().startswith("re-ran: ")]
    assert "model-evaluation" in summary.ran and "model-evaluation" not in summary.cached
    assert set(summary.ran) - UNCACHED <= {"model-evaluation", "register-model"}, summary.ran
    assert {"shard-curation", "shard-captioning", "quality-gate", "pack-data"} <= set(summary.cached)
    assert len([t for t in summary.cached if t.startswith("stage-training")]) == len(STAGE_NAMES)
    assert outputs["evaluation metrics"] != first_outputs["evaluation metrics"]  # written by this run
