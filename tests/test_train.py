"""Curriculum training on the tiny Kangaroo model: five stages in sequence (pretrain_refinement runs ZeRO-3
and is exported through zero_to_fp32), frozen groups, torchrun with two ranks (ZeRO-2 and ZeRO-3, ranks
holding different numbers of videos), kill-and-resume reproducing the uninterrupted loss sequence, the
memory planner. Every stage reads packed data (`kangaroo pack`) through the streaming reader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from kangaroo.config import load_params
from kangaroo.packed.pack import pack_training_data
from kangaroo.synth.corpus import write_corpus
from kangaroo.synth.settings import SynthSettings
from kangaroo.train.checkpointing import latest_tag
from kangaroo.train.data import read_jsonl
from kangaroo.train.deepspeed_config import RANK_ENV
from kangaroo.train.reference_dataset import write_reference_dataset
from kangaroo.train.settings import STAGE_NAMES

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"
KANGAROO = str(Path(sys.executable).with_name("kangaroo"))
STEPS = 8  # optimizer steps per stage in the curriculum test: enough to see the loss fall, cheap on 2 cores
WINDOW = 3  # loss decrease = mean of the first WINDOW steps > mean of the last WINDOW steps
# 8 steps of the four-source mixes at the tiny 1e-3 / 5e-4 move the loss less than batch-to-batch noise
MIX_STAGE_LRS = ["train.stages.instruction_tuning.lr=4e-3", "train.stages.long_video_tuning.lr=4e-3"]
RESUME_EVERY = 2  # checkpoint interval of the kill-and-resume run


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("train_corpus")
    # 64 stills fill the 1024-token rows of the tiny stage 1 (8 would leave rows mostly padding)
    write_corpus(
        out,
        SynthSettings(
            seed=3,
            num_videos=16,
            num_images=64,
            long_video_seconds=20.0,
            workers=2,
            num_motion_clips=0,
            shape_radius_fraction=0.12,
            image_shape_weights=[1, 1, 1, 1],
        ),
    )
    return out


@pytest.fixture(scope="module")
def dataset(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("train_dataset")
    write_reference_dataset(corpus, out, split=None)  # all kept clips: the loader must drop held-out ones
    return out


@pytest.fixture(scope="module")
def packed(corpus, dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("packed")
    pack_training_data(load_params(PARAMS, "tiny"), corpus, out, dataset=dataset, show_progress=False)
    return out


@pytest.fixture(scope="module")
def curriculum(packed, tmp_path_factory) -> Path:
    """All five tiny stages in sequence, each from the previous stage's model (default init_from)."""
    from kangaroo.train.loop import train_stage

    runs = tmp_path_factory.mktemp("curriculum")
    # the last stage checkpoints every 2 steps: the kill-and-resume test compares against this run
    params = load_params(
        PARAMS,
        "tiny",
        [
            f"train.stages.long_video_tuning.checkpoint_every={RESUME_EVERY}",
            *MIX_STAGE_LRS,
        ],
    )
    for stage in STAGE_NAMES:
        train_stage(
            params,
            stage,
            runs / stage,
            data=packed,
            max_steps=STEPS,
            show_progress=False,
        )
    return runs


def losses(run: Path) -> list[float]:
    return [row["loss"] for row in read_jsonl(run / "metrics.jsonl")]


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "model" / "model.safetensors")


def group_names(names, prefix_by_group: dict[str, str], group: str) -> list[str]:
    return [n for n in names if n.startswith(prefix_by_group[group])]


def packed_samples(packed: Path) -> list[dict]:
    return read_jsonl(packed / "samples.jsonl")


def test_packed_data_holds_out_eval_questions_and_their_clips(corpus, packed):
    samples = packed_samples(packed)
    questions = {row["question_id"]: row for row in read_jsonl(corpus / "questions.jsonl")}
    eval_videos = {Path(q["video"]).name for q in questions.values() if q["split"] == "eval"}
    stills = {row["image"]: row["split"] for row in read_jsonl(corpus / "images.jsonl")}
    by_source: dict[str, list] = {}
    for sample in samples:
        by_source.setdefault(sample["source"], []).append(sample)
    assert set(by_source) == {"images", "image_qa", "captions", "qa"}
    assert all(s["split"] == "train" for s in samples)
    assert {s["key"] for s in by_source["qa"]} == {k for k, q in questions.items() if q["split"] == "train"}
    assert not any(Path(s["key"]).name in eval_videos for s in by_source["captions"])
    assert all(stills[s["key"]] == "train" for s in by_source["images"])
    image_questions = read_jsonl(corpus / "image_questions.jsonl")
    assert {s["key"] for s in by_source["image_qa"]} == {
        q["question_id"] for q in image_questions if q["split"] == "train"
    }
    # a still's questions travel in the same record as its pixels (stored once)
    records_of_still: dict[str, set] = {}
    still_of = {q["question_id"]: q["image"] for q in image_questions}
    for sample in by_source["image_qa"]:
        records_of_still.setdefault(still_of[sample["key"]], set()).add(sample["record"])
    assert all(len(records) == 1 for records in records_of_still.values())
    manifest = json.loads((packed / "packed.json").read_text())
    assert manifest["num_samples"] == len(samples) and not manifest["rejected"]


def test_index_lengths_plan_rows_without_decoding(packed, tmp_path):
    """The lengths planned from the index equal the processed stills' lengths and bound the clips' ones."""
    from kangaroo.model.build import build_processor_only
    from kangaroo.packed.reader import PackedData
    from kangaroo.train.sampler import PackedRowSampler
    from kangaroo.train.stream import PackedRowStream, RecentFrames, stage_index

    params = load_params(PARAMS, "tiny")
    stage = params.train.stage("instruction_tuning")
    processor = build_processor_only(params.model)
    data = PackedData.open(packed, params.storage)
    index = stage_index(data, stage, processor)
    sampler = PackedRowSampler(index.length, stage.context_length, 0, groups=index.shard, window=4)
    stream = PackedRowStream(data, index, sampler, stage, params.video, processor)
    checked_images = checked_videos = 0
    for row in sampler.rank_rows(0)[:6]:
        built = stream.build(row, RecentFrames(1 << 20), tmp_path)
        assert not built.skipped
        planned = sum(int(index.length[i]) for i in row)
        assert built.batch.real_tokens <= planned <= stage.context_length
        if all(index.is_image[i] for i in row):
            assert built.batch.real_tokens == planned
        checked_images += sum(bool(index.is_image[i]) for i in row)
        checked_videos += sum(not index.is_image[i] for i in row)
    assert checked_images and checked_videos


def test_five_stages_chain_and_each_loss_decreases(curriculum):
    for index, stage in enumerate(STAGE_NAMES):
        run = curriculum / stage
        summary = json.loads((run / "summary.json").read_text())
        assert summary["steps"] == STEPS
        expected_init = "scratch" if index == 0 else str(curriculum / STAGE_NAMES[index - 1] / "model")
        assert summary["init"] == expected_init
        series = losses(run)
        assert len(series) == STEPS and all(map(lambda x: x == x, series))  # no NaN
        first, last = sum(series[:WINDOW]) / WINDOW, sum(series[-WINDOW:]) / WINDOW
        assert last < first, f"{stage}: loss did not decrease: {series}"
        assert 0.0 <= summary["padding_fraction"] < 0.5
        assert (run / "model" / "config.json").is_file() and (
            run / "model" / "processor_config.json"
        ).exists()
        assert any((run / "tensorboard").iterdir())
    video = json.loads((curriculum / "instruction_tuning" / "summary.json").read_text())
    assert video["frames_per_sample"] > 1.0  # dynamic sampling: several frames per clip


def test_frozen_groups_unchanged_and_trainable_groups_moved(curriculum):
    from kangaroo.model import load_model_and_processor

    model, _ = load_model_and_processor(curriculum / STAGE_NAMES[0] / "model")
    prefixes = {}
    for group, module in model.module_groups().items():
        name = next(n for n, m in model.named_modules() if m is module)
        prefixes[group] = name + "."
    params = load_params(PARAMS, "tiny")
    for index in range(1, len(STAGE_NAMES)):
        stage = STAGE_NAMES[index]
        before, after = weights(curriculum / STAGE_NAMES[index - 1]), weights(curriculum / stage)
        assert before.keys() == after.keys()
        trainable = params.train.stage(stage).trainable
        for group in prefixes:
            names = group_names(before, prefixes, group)
            assert names, group
            same = all(torch.equal(before[n], after[n]) for n in names)
            if group in trainable:
                assert not same, f"{stage}: trainable group {group} did not change"
            else:
                assert same, f"{stage}: frozen group {group} changed"


def run_cli(args: list[str], env: dict[str, str] | None = None, launcher: list[str] | None = None):
    command = (launcher or []) + [KANGAROO, "train", "--params", str(PARAMS), "--profile", "tiny", *args]
    # a fresh job: not the rank variables the in-process curriculum left in this test process
    clean = {k: v for k, v in os.environ.items() if k not in RANK_ENV}
    return subprocess.run(
        command, cwd=ROOT, env={**clean, **(env or {})}, capture_output=True, text=True, timeout=600
    )


def explain(result: subprocess.CompletedProcess) -> str:
    """The error lines of a failed run (tracebacks, errors) rather than only the launcher's summary."""
    keep = [
        line for line in result.stderr.splitlines() if "Error" in line or "error" in line or "File " in line
    ]
    return "\n".join(keep[-60:])


def run_two_ranks(
    curriculum, packed, out: Path, zero_stage: int, stage: str = "instruction_tuning", overrides: tuple = ()
) -> dict:
    """One STAGE run under `torchrun --nproc_per_node 2`; checks it against the 1-rank stage.

    Instruction tuning's packed rows hold ~12 samples of 1-8 frames each, so the two ranks' rows differ in
    their numbers of videos and frames at nearly every micro-batch.
    """
    previous = curriculum / STAGE_NAMES[STAGE_NAMES.index(stage) - 1]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    result = run_cli(
        [
            "--stage",
            stage,
            "--data",
            str(packed),
            "--init",
            str(previous),
            "--out",
            str(out),
            "--max-steps",
            "3",
            "--set",
            f"train.stages.{stage}.zero_stage={zero_stage}",
            *(arg for override in overrides for arg in ("--set", override)),
        ],
        launcher=launcher,
    )
    assert result.returncode == 0, explain(result)
    summary = json.loads((out / "summary.json").read_text())
    single = json.loads((curriculum / stage / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 3
    # the global token batch is fixed: two ranks halve the accumulation
    assert summary["tokens_per_step"] == single["tokens_per_step"]
    assert summary["gradient_accumulation"] * 2 == single["gradient_accumulation"]
    # both ranks' partitions end up in one complete model (ZeRO-3: consolidated through zero_to_fp32)
    consolidated = weights(out)
    assert consolidated.keys() == weights(previous).keys()
    assert all(torch.isfinite(t).all() for t in consolidated.values())
    assert len(losses(out)) == 3
    return summary


def test_two_rank_torchrun(curriculum, packed, tmp_path):
    run_two_ranks(curriculum, packed, tmp_path / "instruction_tuning", zero_stage=2)


def test_two_rank_torchrun_zero3(curriculum, packed, tmp_path):
    run_two_ranks(curriculum, packed, tmp_path / "instruction_tuning", zero_stage=3)


def test_two_rank_torchrun_runs_a_phased_stage(curriculum, packed, tmp_path):
    """Both ranks train each phase and start the next from the model rank 0 exported (ZeRO-3 partitions).
    The test corpus's direction questions fill one row, too few for two ranks: here the phases differ in
    their learning rate."""
    phases = "[{name: first, share: 0.34}, {name: second, share: 0.66, lr: 5.0e-4}]"
    summary = run_two_ranks(
        curriculum,
        packed,
        tmp_path / "phased",
        zero_stage=3,
        stage="pretrain_refinement",
        overrides=(f"train.stages.pretrain_refinement.phases={phases}",),
    )
    assert [(phase["phase"], phase["steps"]) for phase in summary["phases"]] == [("first", 1), ("second", 2)]
    assert (tmp_path / "phased" / "checkpoints" / "phase-first" / "model" / "model.safetensors").is_file()
    # the second phase ran its own schedule at its own peak LR
    from kangaroo.train.loop import lr_lambda

    override = f"train.stages.pretrain_refinement.phases={phases}"
    _, second = load_params(PARAMS, "tiny", [override]).train.stage("pretrain_refinement").runs(3)[1]
    rows = read_jsonl(tmp_path / "phased" / "metrics.jsonl")
    assert [row["phase"] for row in rows] == ["first", "second", "second"]
    assert [row["lr"] for row in rows[1:]] == [5e-4 * lr_lambda(second, 2)(step) for step in (1, 2)]


# Two ZeRO-3 ranks whose rows differ on purpose: rank 0 three videos per row, rank 1 one video or text only,
# with the vision tower chunked. ZeRO-3 gathers weights per module call, so any data-dependent number of
# calls hangs or fails with a collective mismatch; the short gloo timeout turns a hang into an error.
UNEVEN_RANKS_SCRIPT = """
import datetime, os, sys
import deepspeed, torch, torch.distributed as dist
from kangaroo.config import load_params
from kangaroo.model import build_model_and_processor
from kangaroo.train.deepspeed_config import deepspeed_config

dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
rank = dist.get_rank()
params = load_params(sys.argv[1], "tiny", ["model.vision_frames_per_chunk=2"])
stage = params.train.stage("instruction_tuning").model_copy(update={"zero_stage": 3})
torch.manual_seed(0)
model, _ = build_model_and_processor(params.model)
config, size = model.config, params.model.image_size
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
ds_config = deepspeed_config(stage, 2, sum(p.numel() for p in model.parameters()))
engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, config=ds_config)
for step in range(4):
    counts = [3, 2, 5] if rank == 0 else [step + 1]
    if rank == 1 and step == 2:  # a text-only row
        counts = []
    visual = sum(config.num_visual_tokens(c, size, size) for c in counts)
    ids = torch.randint(10, 100, (1, visual + 24))
    ids[0, 4 : 4 + visual] = config.video_token_id
    labels = ids.clone()
    labels[0, : 4 + visual] = -100
    inputs = {"input_ids": ids, "labels": labels}
    if counts:
        inputs["pixel_values"] = torch.randn(sum(counts), 3, size, size)
        inputs["frame_timestamps"] = torch.cat([torch.arange(c, dtype=torch.float) for c in counts])
        inputs["video_frame_counts"] = torch.tensor(counts)
    loss = engine(**inputs).loss
    engine.backward(loss)
    engine.step()
    assert torch.isfinite(loss), loss
    with open(f"{sys.argv[2]}/rank{rank}.txt", "a") as done:
        done.write(f"{step} {len(counts)}\\n")
dist.barrier()
# All steps are done and recorded; skip interpreter teardown, where a C++ thread of the CPU comm stack
# occasionally aborts the process ("terminate called without an active exception", no Python frame).
os._exit(0)
"""


def test_zero3_ranks_with_different_video_counts_stay_in_step(tmp_path):
    script = tmp_path / "uneven_ranks.py"
    script.write_text(UNEVEN_RANKS_SCRIPT)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    clean = {k: v for k, v in os.environ.items() if k not in RANK_ENV}
    result = subprocess.run(
        [*launcher, str(script), str(PARAMS), str(tmp_path)],
        cwd=ROOT,
        env={**clean, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, explain(result)
    # every step ran on both ranks: (step, videos in the row)
    assert (tmp_path / "rank0.txt").read_text().split("\n")[:-1] == [f"{step} 3" for step in range(4)]
    assert (tmp_path / "rank1.txt").read_text().split("\n")[:-1] == ["0 1", "1 1", "2 0", "3 1"]


def test_lr_scale_trains_a_module_group_at_its_share_of_the_lr(curriculum, packed, tmp_path):
    """`lr_scale: {vision: 0.1}` through the CLI and DeepSpeed: AdamW's first step moves every weight by at
    most its group's LR (|m / sqrt(v)| = 1), so the tower moves a tenth as far as the LLM."""
    from kangaroo.model import load_model_and_processor

    stage, lr = "instruction_tuning", 1e-3
    previous = curriculum / STAGE_NAMES[STAGE_NAMES.index(stage) - 1]
    overrides = [
        f"train.stages.{stage}.trainable=[vision,temporal,patchify,projector,llm]",
        f"train.stages.{stage}.lr_scale={{vision: 0.1}}",
        f"train.stages.{stage}.lr={lr}",
        f"train.stages.{stage}.warmup_ratio=0",
    ]
    args = ["--stage", stage, "--data", str(packed), "--init", str(previous), "--out", str(tmp_path / "run")]
    result = run_cli([*args, "--max-steps", "1", *(a for o in overrides for a in ("--set", o))])
    assert result.returncode == 0, explain(result)
    model, _ = load_model_and_processor(previous / "model")
    prefix = {
        group: next(n for n, m in model.named_modules() if m is module) + "."
        for group, module in model.module_groups().items()
    }
    before, after = weights(previous), weights(tmp_path / "run")
    largest_step = {
        group: max((after[n] - before[n]).abs().max().item() for n in group_names(before, prefix, group))
        for group in ("vision", "llm")
    }
    assert largest_step["llm"] == pytest.approx(lr, rel=1e-3), largest_step
    assert largest_step["vision"] == pytest.approx(0.1 * lr, rel=1e-3), largest_step


def test_kill_and_resume_reproduces_the_uninterrupted_run(curriculum, packed, tmp_path):
    """The curriculum's in-process long-video stage is the uninterrupted run; here the same stage is run
    as a CLI process with 2 DataLoader workers, SIGKILLed after step 5 (checkpoint at 4), then resumed with
    --resume: the stream position in the checkpoint restarts the workers on exactly the next row."""
    straight, broken = curriculum / "long_video_tuning", tmp_path / "broken"
    args = [
        "--stage",
        "long_video_tuning",
        "--data",
        str(packed),
        "--init",
        str(curriculum / "instruction_tuning"),
        "--max-steps",
        str(STEPS),
        "--out",
        str(broken),
        "--set",
        f"train.stages.long_video_tuning.checkpoint_every={RESUME_EVERY}",
        "--set",
        "train.data.workers=2",
        *(arg for override in MIX_STAGE_LRS for arg in ("--set", override)),
    ]
    killed = run_cli(args, env={"KANGAROO_TRAIN_KILL_AFTER_STEP": "5"})
    assert killed.returncode == -9, explain(killed)  # SIGKILL, like a pre-empted node
    assert latest_tag(broken / "checkpoints") == "step0000004"  # the newest committed checkpoint
    assert not (broken / "model").exists()
    assert len(losses(broken)) == 5  # step 5 ran but was not checkpointed

    resumed = run_cli([*args, "--resume"])
    assert resumed.returncode == 0, explain(resumed)
    assert losses(broken) == losses(straight)  # bit-exact on CPU: same data order, RNG, optimizer state
    expected, got = weights(straight), weights(broken)
    assert all(torch.equal(expected[n], got[n]) for n in expected)


def test_a_phased_stage_runs_its_phases_in_order_and_resumes_past_a_finished_one(
    curriculum, packed, tmp_path
):
    """The tiny temporal stage has two phases (direction questions, then all): killed in the second phase
    and resumed, it keeps the finished first phase (its model and summary, not retrained) and reproduces
    the uninterrupted stage: one metrics.jsonl numbered across the phases, the same final weights."""
    stage = "pretrain_refinement"
    straight, broken = curriculum / stage, tmp_path / "broken"
    phases = [phase.name for phase in load_params(PARAMS, "tiny").train.stage(stage).phases]
    assert phases == ["direction", "all_questions"]
    first_steps = round(STEPS * 0.3)  # the first phase's share of the budget
    args = [
        "--stage", stage, "--data", str(packed), "--init", str(curriculum / "video_text_pretrain"),
        "--max-steps", str(STEPS), "--out", str(broken),
        "--set", f"train.stages.{stage}.checkpoint_every={RESUME_EVERY}",
    ]  # fmt: skip
    kill_at = first_steps + RESUME_EVERY + 1  # the second phase checkpointed at its step 2, then died
    killed = run_cli(args, env={"KANGAROO_TRAIN_KILL_AFTER_STEP": str(kill_at)})
    assert killed.returncode == -9, explain(killed)
    first_phase = broken / "checkpoints" / "phase-direction"
    assert (first_phase / "model" / "model.safetensors").is_file()
    finished = (first_phase / "summary.json").read_text()
    assert latest_tag(broken / "checkpoints" / "phase-all_questions") == f"step{RESUME_EVERY:07d}"

    resumed = run_cli([*args, "--resume"])
    assert resumed.returncode == 0, explain(resumed)
    assert (first_phase / "summary.json").read_text() == finished  # not trained again: its times would differ
    rows = read_jsonl(broken / "metrics.jsonl")
    assert [row["step"] for row in rows] == list(range(1, STEPS + 1))
    assert [row["phase"] for row in rows] == ["direction"] * first_steps + ["all_questions"] * (
        STEPS - first_steps
    )
    assert losses(broken) == losses(straight)
    expected, got = weights(straight), weights(broken)
    assert all(torch.equal(expected[n], got[n]) for n in expected)

    # the first phase trained only the direction questions, the second every question of the stage's source
    summary = json.loads((straight / "summary.json").read_text())
    questions = [s for s in packed_samples(packed) if s["source"] == "qa"]
    direction = [s for s in questions if s["category"] == "direction"]
    assert 0 < len(direction) < len(questions)
    assert [(p["phase"], p["steps"], p["num_samples"]) for p in summary["phases"]] == [
        ("direction", first_steps, len(direction)),
        ("all_questions", STEPS - first_steps, len(questions)),
    ]
    assert summary["steps"] == STEPS and summary["num_samples"] == len(questions)


def test_memory_plan_for_the_paper_profile():
    from kangaroo.train.memory_plan import plan_memory

    plans = {p.stage: p for p in plan_memory(load_params(PARAMS, "paper"))}
    assert list(plans) == list(STAGE_NAMES)
    total = plans["instruction_tuning"].total_params
    assert 8e9 < total < 9.5e9  # EVA02-L (~0.3B) + Llama-3-8B + connector
    for plan in plans.values():
        assert plan.zero3_model_states_gb < plan.zero2_model_states_gb
    assert plans["long_video_tuning"].activations_gb > plans["instruction_tuning"].activations_gb
    assert plans["image_text_pretrain"].trainable_params < 0.1 * total  # connector-only alignment


@pytest.mark.parametrize(
    ("requested", "env", "cores", "expected"),
    [
        (2, {}, 2, 2),  # one process on a 2-core box uses both cores
        (2, {"WORLD_SIZE": "2"}, 2, 1),  # two ranks share them: one thread each
        (2, {"LOCAL_WORLD_SIZE": "2", "WORLD_SIZE": "16"}, 2, 1),  # torchrun: ranks on this node count
        (8, {"LOCAL_WORLD_SIZE": "1"}, 4, 4),  # never more than the cores
    ],
)
def test_intra_op_threads_share_the_cores_among_local_ranks(monkeypatch, requested, env, cores, expected):
    from kangaroo.train.threads import intra_op_threads

    for name in ("LOCAL_WORLD_SIZE", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
    assert intra_op_threads(requested) == expected
