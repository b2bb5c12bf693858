"""`kangaroo train` (what `dvc repro`'s train stages run) goes through the launcher a KFP training task runs,
kangaroo.train.launch.run_stage: `--num-gpus 2` on this CPU machine spawns torchrun, whose two gloo ranks
train the stage as one world from the stage's own resolved config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from train_helpers import pack_still_images

from kangaroo.config import load_params
from kangaroo.step_config import step_document, write_step_configs
from kangaroo.train.deepspeed_config import RANK_ENV

ROOT = Path(__file__).resolve().parents[1]
KANGAROO = str(Path(sys.executable).with_name("kangaroo"))
STAGE = "image_text_pretrain"  # images only: the cheapest corpus to make


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> Path:
    return pack_still_images(tmp_path_factory.mktemp("images_corpus"), tmp_path_factory.mktemp("packed"))


@pytest.mark.slow
def test_num_gpus_2_runs_two_gloo_ranks_through_the_launcher(packed, tmp_path):
    (config,) = write_step_configs(load_params(ROOT / "params.yaml", "tiny"), tmp_path, [f"train_{STAGE}"])
    out = tmp_path / STAGE
    command = [KANGAROO, "train", "--stage", STAGE, "--params", str(config), "--data", str(packed)]
    command += ["--init", "scratch", "--out", str(out), "--max-steps", "2", "--num-gpus", "2"]
    env = {key: value for key, value in os.environ.items() if key not in RANK_ENV}  # not under a launcher
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    # the launcher's own log line (rich wraps it): one torchrun, two processes on this node
    logged = " ".join((result.stdout + result.stderr).split())
    assert "launching" in logged and "--nproc-per-node=2 --standalone" in logged, logged[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 2 and summary["stage"] == STAGE
    assert (out / "model" / "config.json").is_file()
    # the ranks read the stage's resolved config, as written by the launcher: still only that step's settings
    ranks_read = load_params(out / "params.yaml")
    assert step_document(ranks_read) == json.loads(config.read_text())
