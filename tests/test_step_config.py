"""Per-step resolved configs: a step run from its file reads exactly the settings it reads from the whole
params.yaml, and nothing else (a read outside its list fails loudly instead of falling back to a default); a
file changes exactly when one of its step's settings or the library code changes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kangaroo.config import ConfigError, load_params, load_params_text, write_resolved_params
from kangaroo.step_config import (
    STEP_SETTINGS,
    StepScopeError,
    resolve_step,
    step_document,
    step_json,
    write_step_configs,
)
from kangaroo.train.settings import STAGE_NAMES

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"
TOP_LEVEL = [
    "synth",
    "video",
    "curation",
    "caption",
    "quality",
    "model",
    "train",
    "eval",
    "storage",
    "cluster",
]


def setting(params, dotted: str):
    value = params
    for key in dotted.split("."):
        value = getattr(value, key)
    return value


@pytest.mark.parametrize("profile", ["tiny", "paper"])
@pytest.mark.parametrize("step", list(STEP_SETTINGS))
def test_step_reads_the_same_settings_from_its_file_and_nothing_else(step, profile, tmp_path):
    full = load_params(PARAMS, profile)
    (path,) = write_step_configs(full, tmp_path, [step])
    from_file = load_params(path)
    assert from_file.profile == profile
    for dotted in STEP_SETTINGS[step]:
        assert setting(from_file, dotted) == setting(full, dotted), dotted
    for block in TOP_LEVEL:
        if not any(d == block or d.startswith(f"{block}.") for d in STEP_SETTINGS[step]):
            with pytest.raises(
                StepScopeError, match=f"step '{step}'.*'{block}' is not a setting this step reads"
            ):
                getattr(from_file, block)


def test_partial_blocks_refuse_their_other_settings(tmp_path):
    paths = {p.stem: p for p in write_step_configs(load_params(PARAMS, "tiny"), tmp_path)}
    validate = load_params(paths["validate"])
    assert validate.caption.num_key_frames == 5
    with pytest.raises(StepScopeError, match=r"\[caption\]: 'backend'"):
        _ = validate.caption.backend
    stage = load_params(paths["train_instruction_tuning"])
    assert stage.train.stage("instruction_tuning").lr == 1.0e-3 and stage.train.torch_threads == 2
    with pytest.raises(StepScopeError, match="'long_video_tuning'"):
        stage.train.stage("long_video_tuning")
    with pytest.raises(StepScopeError, match="'plan_gpus_per_node'"):
        _ = stage.train.plan_gpus_per_node


def test_a_real_step_outside_its_settings_fails_loudly(tmp_path):
    """The vision-tower step given the evaluate step's file: an error naming the setting, not defaults."""
    from kangaroo.train.vision_tags import pretrain_vision_tower

    paths = {p.stem: p for p in write_step_configs(load_params(PARAMS, "tiny"), tmp_path)}
    with pytest.raises(StepScopeError, match="step 'evaluate'.*'train' is not a setting this step reads"):
        pretrain_vision_tower(load_params(paths["evaluate"]), tmp_path, tmp_path / "tower")


def changed_steps(**overrides: str) -> set[str]:
    base = load_params(PARAMS, "tiny")
    edited = load_params(PARAMS, "tiny", [f"{k}={v}" for k, v in overrides.items()])
    return {
        s for s in STEP_SETTINGS if step_json(resolve_step(base, s)) != step_json(resolve_step(edited, s))
    }


def test_an_edit_changes_only_the_steps_that_read_it():
    assert changed_steps(**{"eval.batch_size": "3"}) == {"evaluate"}
    assert changed_steps(**{"train.stages.instruction_tuning.lr": "3e-4"}) == {"train_instruction_tuning"}
    assert changed_steps(**{"caption.num_key_frames": "4"}) == {"caption", "validate"}
    assert changed_steps(**{"caption.openai.timeout_s": "9"}) == {"caption"}
    assert changed_steps(**{"train.torch_threads": "1"}) == {
        "pretrain_vision",
        "alignment_model",
        *[f"train_{s}" for s in STAGE_NAMES],
    }
    assert changed_steps(**{"model.dtype": "bfloat16"}) == {
        "pretrain_vision",
        *[f"train_{s}" for s in STAGE_NAMES],
    }
    assert changed_steps(**{"cluster.retries": "5"}) == {"placement"}  # no training result depends on it


def test_code_version_follows_the_library_source(tmp_path):
    """A copy of the library: its digest changes with a source edit, not with bytecode or the params."""
    copy = tmp_path / "kangaroo"
    shutil.copytree(ROOT / "kangaroo", copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))

    def version(env_extra: dict[str, str] | None = None) -> dict[str, str]:
        code = "import json; from kangaroo.step_config import code_version; print(json.dumps(code_version()))"
        env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", **(env_extra or {})}
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
        )
        return json.loads(out.stdout)

    before = version()
    assert before["package"] == "0.1.0" and before["source"].startswith("sha256:") and "image" not in before
    assert version() == before  # importing wrote __pycache__/: not part of the code
    (copy / "train" / "loop.py").write_text((copy / "train" / "loop.py").read_text() + "\n# edited\n")
    after = version()
    assert after["source"] != before["source"]
    assert version({"KANGAROO_IMAGE_DIGEST": "sha256:" + "ab" * 32})["image"] == "sha256:" + "ab" * 32


def test_step_file_round_trips_through_the_launcher_and_kfp_text(tmp_path):
    """What torchrun ranks / PyTorchJob replicas and a KFP task read is the same step document."""
    (path,) = write_step_configs(load_params(PARAMS, "paper"), tmp_path, ["train_long_video_tuning"])
    params = load_params(path, "paper", ["model.vision_model=/models/tower"])
    child = write_resolved_params(params, tmp_path / "rank-params.yaml")
    again = load_params(child, "paper")
    assert step_document(again) == step_document(params) and again.model.vision_model == "/models/tower"
    from_text = load_params_text(path.read_text())
    assert step_document(from_text)["settings"] == json.loads(path.read_text())["settings"]
    with pytest.raises(ConfigError, match="resolved for profile 'paper', not 'tiny'"):
        load_params(path, "tiny")


def test_resolve_config_cli_writes_one_file_per_step(tmp_path):
    kangaroo = Path(sys.executable).parent / "kangaroo"
    result = subprocess.run(
        [
            str(kangaroo),
            "resolve-config",
            "--params",
            str(PARAMS),
            "--profile",
            "paper",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.stem for p in tmp_path.glob("*.json")) == sorted(STEP_SETTINGS)
    evaluate = json.loads((tmp_path / "evaluate.json").read_text())
    assert evaluate["profile"] == "paper" and evaluate["settings"]["eval"]["num_frames"] == 64
    assert set(evaluate["settings"]) == {"eval", "video", "storage"}
    bad = subprocess.run(
        [
            str(kangaroo),
            "resolve-config",
            "--params",
            str(PARAMS),
            "--set",
            "eval.batchsize=2",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "unknown key 'eval.batchsize'" in " ".join(
        (bad.stdout + bad.stderr).split()
    )


def test_checkpoint_fingerprint_includes_the_code_version(tmp_path):
    """A new image must not resume a checkpoint written by other code (same config, same inputs)."""
    from kangaroo.train.launch import run_fingerprint

    (path,) = write_step_configs(load_params(PARAMS, "tiny"), tmp_path, ["train_instruction_tuning"])
    document = json.loads(path.read_text())
    same = run_fingerprint(load_params(path), "instruction_tuning", "corpus", "dataset")
    assert run_fingerprint(load_params(path), "instruction_tuning", "corpus", "dataset") == same
    document["code_version"]["source"] = "sha256:" + "0" * 64
    other = tmp_path / "other.json"
    other.write_text(json.dumps(document))
    assert run_fingerprint(load_params(other), "instruction_tuning", "corpus", "dataset") != same
