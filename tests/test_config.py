"""params.yaml: both profiles validate, overrides apply, and bad input names the key and the file."""

from pathlib import Path

import pytest
import yaml

from kangaroo.config import ConfigError, load_params


def test_both_profiles_load_from_project_params(project_root: Path):
    tiny = load_params(project_root / "params.yaml", profile="tiny")
    paper = load_params(project_root / "params.yaml", profile="paper")
    assert tiny.profile == "tiny" and paper.profile == "paper"


def test_override_is_parsed_as_yaml(project_root: Path):
    params = load_params(project_root / "params.yaml", overrides=["curation.workers=7"])
    assert params.curation.workers == 7


def test_override_reaches_a_value_the_file_leaves_at_its_default(project_root: Path):
    """params.yaml holds only the profiles' choices; `--set` still addresses every setting."""
    params = load_params(
        project_root / "params.yaml", "tiny", ["eval.batch_size=3", "model.llm.hidden_size=64"]
    )
    assert params.eval.batch_size == 3 and params.model.llm.hidden_size == 64
    assert params.train.torch_threads == 2  # the profile's own choices survive the override


def test_unknown_override_key_is_named(project_root: Path):
    with pytest.raises(ConfigError, match="curation.wrkers"):
        load_params(project_root / "params.yaml", overrides=["curation.wrkers=3"])


def test_bad_value_names_key_and_file(project_root: Path, tmp_path: Path):
    tree = yaml.safe_load((project_root / "params.yaml").read_text())
    tree["profiles"]["tiny"]["curation"] = {"workers": "many"}
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(tree))
    with pytest.raises(ConfigError) as err:
        load_params(bad)
    assert "curation.workers" in str(err.value) and str(bad) in str(err.value)


def test_unknown_profile_and_missing_file(project_root: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="unknown profile 'huge'"):
        load_params(project_root / "params.yaml", profile="huge")
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")


def test_unknown_key_in_file_is_rejected(project_root: Path, tmp_path: Path):
    tree = yaml.safe_load((project_root / "params.yaml").read_text())
    tree["profiles"]["tiny"]["video"] = {"bakend": "pyav"}
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(tree))
    with pytest.raises(ConfigError, match="video.bakend"):
        load_params(bad)


def test_tiny_caption_stages_after_the_first_keep_stills_in_the_mix(project_root: Path):
    """The tiny model learns to see only in stage 1. A later stage that trains on the noisy alt-text
    captions alone wiped that out in 40 steps (measured: colour-word loss on stills 0.04 -> 7.9), so
    the later stages that train the LLM on captions still read stills. The temporal stage reads only
    questions (motion clips and curated clips): 1,000 such steps left the appearance skills where they were
    (docs/training.md E46). Long-video tuning is a 30-step top-up at half the LR on clips only (measured:
    colour-word loss 0.22 -> 0.28)."""
    tiny = load_params(project_root / "params.yaml", profile="tiny")
    for name in ("video_text_pretrain", "pretrain_refinement", "instruction_tuning"):
        stage = tiny.train.stage(name)
        assert "llm" in stage.trainable, name
        if "captions" in stage.sources:
            assert {"images", "image_qa"} & set(stage.sources), name
        else:
            assert stage.sources == ["qa"], name


def test_lr_scale_names_trainable_groups_with_positive_factors(project_root: Path):
    """A scale for a frozen group would silently do nothing, and a zero or negative one is a frozen group in
    disguise: both are config errors naming the key."""
    params_file, stage = project_root / "params.yaml", "train.stages.pretrain_refinement"
    scaled = load_params(
        params_file,
        "tiny",
        [f"{stage}.trainable=[vision,llm]", f"{stage}.lr_scale={{vision: 0.1}}"],
    ).train.stage("pretrain_refinement")
    assert scaled.lr_scale == {"vision": 0.1}
    with pytest.raises(ConfigError, match=r"lr_scale names groups \['vision'\] that are not in trainable"):
        load_params(params_file, "tiny", [f"{stage}.lr_scale={{vision: 0.1}}"])
    with pytest.raises(ConfigError, match="lr_scale"):
        load_params(
            params_file, "tiny", [f"{stage}.trainable=[vision,llm]", f"{stage}.lr_scale={{vision: 0}}"]
        )
    with pytest.raises(ConfigError, match="lr_scale"):
        load_params(params_file, "tiny", [f"{stage}.lr_scale={{tower: 0.1}}"])


def test_stage_phases_split_the_step_budget_and_name_what_is_wrong(project_root: Path):
    """Phases take their shares of the stage's steps (or of `--max-steps`), adding up to it exactly; each
    phase is checked as a stage block of its own, and the error names the phase."""
    params_file = project_root / "params.yaml"
    phases = "train.stages.pretrain_refinement.phases"
    stage = load_params(
        params_file,
        "tiny",
        [f"{phases}=[{{name: a, share: 0.3, question_categories: [order]}}, {{name: b, share: 0.7}}]"],
    ).train.stage("pretrain_refinement")
    for budget in (1000, 8, 5, 3, 2):
        runs = stage.runs(budget)
        assert [name for name, _ in runs] == ["a", "b"]
        assert sum(settings.max_steps for _, settings in runs) == budget
    first, second = (settings for _, settings in stage.runs(1000))
    assert (first.max_steps, first.question_categories) == (300, ["order"])
    assert (second.max_steps, second.question_categories) == (700, [])
    assert first.lr == second.lr == stage.lr and not first.phases
    by_epochs = stage.model_copy(
        update={"max_steps": None, "epochs": 2.0}
    )  # no step budget: shares of epochs
    assert [(s.max_steps, s.epochs) for _, s in by_epochs.runs()] == [(None, 0.6), (None, 1.4)]

    with pytest.raises(ConfigError, match="add up to 0.5, not 1"):
        load_params(params_file, "tiny", [f"{phases}=[{{name: a, share: 0.5}}]"])
    with pytest.raises(ConfigError, match="phase 'a': .*need a question source"):
        load_params(
            params_file,
            "tiny",
            [f"{phases}=[{{name: a, share: 1, sources: [captions], question_categories: [order]}}]"],
        )
    with pytest.raises(ConfigError, match="repeat"):
        load_params(params_file, "tiny", [f"{phases}=[{{name: a, share: 0.5}}, {{name: a, share: 0.5}}]"])
    with pytest.raises(ConfigError, match="context_length"):  # the model shape and batch stay the stage's
        load_params(params_file, "tiny", [f"{phases}=[{{name: a, share: 1, context_length: 64}}]"])
