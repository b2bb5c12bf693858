"""Checkpoints that commit: two real torchrun ranks (gloo, ZeRO-2) write a checkpoint that counts only once
both ranks' shards are on disk; resume passes over a torn newest checkpoint (uncommitted, or committed and
then damaged) to the newest complete one and reproduces the loss sequence; retention prunes old runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from kangaroo.train.checkpointing import (
    COMMIT_MARKER,
    checkpoint_tags,
    commit_problem,
    latest_tag,
    prune_old_runs,
    tag_for,
)
from kangaroo.train.deepspeed_config import RANK_ENV

ROOT = Path(__file__).resolve().parents[1]
KANGAROO = str(Path(sys.executable).with_name("kangaroo"))
STAGE = "image_text_pretrain"
STEPS = 3


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from kangaroo.synth.images import write_images
    from kangaroo.synth.settings import SynthSettings

    out = tmp_path_factory.mktemp("stills")
    rows, questions = write_images(out, SynthSettings(seed=5, num_images=120))
    (out / "images.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (out / "image_questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    return out


@pytest.fixture(scope="module")
def packed(corpus, tmp_path_factory) -> Path:
    """The stills packed for training (what `kangaroo train --data` reads)."""
    from kangaroo.config import load_params
    from kangaroo.packed.pack import pack_training_data

    out = tmp_path_factory.mktemp("packed")
    pack_training_data(load_params(ROOT / "params.yaml", "tiny"), corpus, out, show_progress=False)
    return out


@pytest.fixture(scope="module")
def params_file(tmp_path_factory) -> Path:
    """The project's params with the tiny stage 1 keeping three checkpoints (the default keeps two)."""
    tree = yaml.safe_load((ROOT / "params.yaml").read_text())
    tree["profiles"]["tiny"]["train"]["stages"][STAGE]["keep_checkpoints"] = 3
    path = tmp_path_factory.mktemp("params") / "params.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    return path


def train_two_ranks(packed: Path, params: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    args = [
        *("--stage", STAGE, "--data", str(packed), "--init", "scratch", "--out", str(out)),
        *("--max-steps", str(STEPS), "--params", str(params), "--profile", "tiny"),
        *("--set", f"train.stages.{STAGE}.checkpoint_every=1"),
        *("--set", "train.torch_threads=1"),
        *extra,
    ]
    clean = {k: v for k, v in os.environ.items() if k not in RANK_ENV}
    return subprocess.run(
        [*launcher, KANGAROO, "train", *args],
        cwd=ROOT,
        # wide enough that the console log handler never wraps a checkpoint path inside a line
        env={**clean, "OMP_NUM_THREADS": "1", "COLUMNS": "2000"},
        capture_output=True,
        text=True,
        timeout=900,
    )


def losses(out: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def marker(tag_dir: Path) -> dict:
    return json.loads((tag_dir / COMMIT_MARKER).read_text())


@pytest.mark.slow
def test_two_ranks_commit_and_resume_falls_back_past_a_torn_checkpoint(packed, params_file, tmp_path):
    out = tmp_path / STAGE
    first = train_two_ranks(packed, params_file, out)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    ckpt = out / "checkpoints"
    assert checkpoint_tags(ckpt) == [tag_for(s) for s in (3, 2, 1)]
    assert not (ckpt / "latest").exists(), "DeepSpeed's rank-0 `latest` is not the commit point"
    for tag in checkpoint_tags(ckpt):
        record = marker(ckpt / tag)
        assert record["world_size"] == 2 and record["step"] == int(tag.removeprefix("step"))
        files = set(record["files"])
        # both ranks' RNG files and ZeRO optimizer partitions were on disk when rank 0 committed
        assert {"rng_rank0.pt", "rng_rank1.pt"} <= files
        assert {f for f in files if "optim_states" in f} == {
            f"zero_pp_rank_{r}_mp_rank_00_optim_states.pt" for r in (0, 1)
        }
        assert commit_problem(ckpt / tag) is None
    straight = losses(out)
    assert len(straight) == STEPS

    # Step 3: rank 1 was killed while writing its optimizer partition, so rank 0 never committed it.
    # Step 2: committed, then damaged on the volume (a shard truncated).
    (ckpt / tag_for(3) / COMMIT_MARKER).unlink()
    for step in (3, 2):
        shard = ckpt / tag_for(step) / "zero_pp_rank_1_mp_rank_00_optim_states.pt"
        shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    assert latest_tag(ckpt) == tag_for(1)
    (out / "summary.json").unlink()

    resumed = train_two_ranks(packed, params_file, out, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = " ".join((resumed.stdout + resumed.stderr).split())
    assert f"{tag_for(3)} skipped: not committed" in log
    assert f"{tag_for(2)} skipped: zero_pp_rank_1_mp_rank_00_optim_states.pt is" in log
    assert "resuming at step 1 of 3" in log
    # steps 2 and 3 were trained again from step 1's state: the same losses as the uninterrupted run
    assert losses(out) == straight
    assert json.loads((out / "summary.json").read_text())["steps"] == STEPS
    assert all(commit_problem(ckpt / tag) is None for tag in checkpoint_tags(ckpt))
    assert latest_tag(ckpt) == tag_for(3)


def committed_run(folder: Path, age_s: float) -> Path:
    """A run folder holding one committed checkpoint whose commit is AGE_S old."""
    tag_dir = folder / tag_for(1)
    tag_dir.mkdir(parents=True)
    (tag_dir / "mp_rank_00_model_states.pt").write_bytes(b"weights")
    (tag_dir / COMMIT_MARKER).write_text(json.dumps({"step": 1, "world_size": 1, "files": {}}))
    then = time.time() - age_s
    os.utime(tag_dir / COMMIT_MARKER, (then, then))
    return folder


def test_retention_prunes_old_runs_but_never_the_current_or_a_recent_one(tmp_path):
    stage_root = tmp_path / STAGE
    day = 86400.0
    current = stage_root / "c0ffee"
    current.mkdir(parents=True)  # the run starting now: no checkpoint yet
    newest_old = committed_run(stage_root / "aaaa", 3 * day)
    older = committed_run(stage_root / "bbbb", 5 * day)
    oldest = committed_run(stage_root / "cccc", 9 * day)
    active = committed_run(stage_root / "dddd", 600.0)  # another pipeline run training right now
    (stage_root / "runs").mkdir()  # multi-node jobs' folder: pruned on its own, never as a run

    deleted = prune_old_runs(stage_root, current, keep_runs=2, min_age_s=day)
    # keep 2 = the current run + the most recent other (the active one); the rest are older than a day
    assert sorted(deleted) == sorted([newest_old, older, oldest])
    assert {p.name for p in stage_root.iterdir()} == {"c0ffee", "dddd", "runs"}
    assert prune_old_runs(stage_root, current, keep_runs=0, min_age_s=0) == []  # 0 = keep everything
    assert active.is_dir() and current.is_dir()
