"""Packed training data on a real S3 server (moto on loopback): `kangaroo pack` to s3://, a stage trained by
streaming from it, and the one-line errors (exit 2) a corrupt shard, a missing object, an unreachable
endpoint and refused credentials end with. Stills whose PNG data is cut after the header pack fine (the
header gives their size) but do not decode: their samples are skipped and counted in the stage summary."""

# ruff: noqa: F811  (pytest fixtures imported from s3_server are used as test arguments)
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from s3_server import S3Server, free_port, s3_auth_server, s3_bucket, s3_server  # noqa: F401  (pytest fixtures)

from kangaroo.config import load_params
from kangaroo.packed.pack import pack_training_data
from kangaroo.synth.corpus import write_corpus
from kangaroo.synth.settings import SynthSettings
from kangaroo.train.data import read_jsonl
from kangaroo.train.deepspeed_config import RANK_ENV
from kangaroo.train.reference_dataset import write_reference_dataset

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"
KANGAROO = str(Path(sys.executable).with_name("kangaroo"))
STAGE = "image_text_pretrain"
STEPS = 8
BROKEN_STILLS = 8


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("packed_corpus")
    write_corpus(out, SynthSettings(seed=5, num_videos=16, num_images=64, long_video_seconds=20.0, workers=2))
    write_reference_dataset(out, out / "dataset", split=None)
    train_stills = [row["image"] for row in read_jsonl(out / "images.jsonl") if row["split"] == "train"]
    for still in train_stills[:BROKEN_STILLS]:  # header (size) intact, pixel data cut: packs, does not decode
        path = out / still
        path.write_bytes(path.read_bytes()[:64])
    return out


@pytest.fixture(scope="module")
def packed_local(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("packed_local")
    pack_training_data(
        load_params(PARAMS, "tiny"), corpus, out, dataset=corpus / "dataset", show_progress=False
    )
    return out


def storage_overrides(server: S3Server) -> list[str]:
    return [f"storage.endpoint={server.endpoint}", "storage.max_attempts=2", "storage.backoff_s=0.1"]


def train_cli(data: str, out: Path, server: S3Server, extra: list[str] = (), env: dict | None = None):
    command = [KANGAROO, "train", "--params", str(PARAMS), "--profile", "tiny", "--stage", STAGE]
    command += ["--data", data, "--init", "none", "--max-steps", str(STEPS), "--out", str(out)]
    for override in [*storage_overrides(server), *extra]:
        command += ["--set", override]
    clean = {k: v for k, v in (env or server.env()).items() if k not in RANK_ENV}
    clean["COLUMNS"] = "400"  # one log record = one line
    return subprocess.run(command, cwd=ROOT, env=clean, capture_output=True, text=True, timeout=900)


def upload(server: S3Server, folder: Path, bucket: str, prefix: str) -> str:
    from kangaroo.storage import ObjectStore

    store = ObjectStore(server.endpoint, server.access_key, server.secret_key)
    store.upload_dir(folder, f"s3://{bucket}/{prefix}")
    return f"s3://{bucket}/{prefix}"


def broken_samples_in_first_rows(packed: Path, corpus: Path, rows: int) -> int:
    """How many samples of the cut stills the stage's first `rows` packed rows hold (from the plan)."""
    from kangaroo.model.build import build_processor_only
    from kangaroo.packed.reader import PackedData
    from kangaroo.train.sampler import PackedRowSampler
    from kangaroo.train.stream import stage_index

    params = load_params(PARAMS, "tiny")
    stage = params.train.stage(STAGE)
    index = stage_index(PackedData.open(packed, params.storage), stage, build_processor_only(params.model))
    sampler = PackedRowSampler(
        index.length,
        stage.context_length,
        params.train.seed,
        groups=index.shard,
        window=params.train.data.window_shards,
    )
    stills = [row["image"] for row in read_jsonl(corpus / "images.jsonl") if row["split"] == "train"]
    broken = set(stills[:BROKEN_STILLS])
    records = {
        s["record"]
        for s in read_jsonl(packed / "samples.jsonl")
        if s["source"] == "images" and s["key"] in broken
    }
    plan = [i for _ in range(rows) for i in sampler.next_row()]
    return sum(int(index.record[i]) in records for i in plan)


def test_pack_to_s3_then_train_streaming_from_it(
    corpus, packed_local, s3_server, s3_bucket, tmp_path, monkeypatch
):
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    params = load_params(PARAMS, "tiny", storage_overrides(s3_server))
    uri = f"s3://{s3_bucket}/packed/v1"
    manifest = pack_training_data(params, corpus, uri, dataset=corpus / "dataset", show_progress=False)
    keys = {o["Key"] for o in s3_server.boto_client().list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert {f"packed/v1/{n}" for n in ("packed.json", "samples.jsonl", "index.json")} <= keys
    assert {f"packed/v1/{s['file']}" for s in manifest["shards"]} <= keys
    # the same bytes as packing to a folder: the version does not depend on where the data goes
    assert manifest["shards"] == json.loads((packed_local / "packed.json").read_text())["shards"]

    out = tmp_path / "stage"
    result = train_cli(
        uri, out, s3_server, ["train.data.workers=2", f"train.data.cache_dir={tmp_path / 'cache'}"]
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    losses = [row["loss"] for row in read_jsonl(out / "metrics.jsonl")]
    assert summary["data"] == uri and summary["steps"] == STEPS and len(losses) == STEPS
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3, losses
    # the cut stills' samples in the rows trained on were skipped and counted, not silently dropped
    accumulation = params.train.stage(STAGE).gradient_accumulation(1)
    expected = broken_samples_in_first_rows(packed_local, corpus, STEPS * accumulation)
    assert expected > 0
    assert summary["skipped_samples"].get("undecodable") == expected
    # shards were fetched into the local cache, verified, nothing else
    cached = {p.name for p in (tmp_path / "cache").rglob("chunk-*.bin")}
    assert cached == {s["file"] for s in manifest["shards"]}


def error_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "PackedDataError" in line]
    assert result.returncode == 2 and len(lines) == 1, result.stdout[-3000:] + result.stderr[-3000:]
    return lines[0]


def test_corrupt_shard_is_named(packed_local, s3_server, s3_bucket, tmp_path):
    uri = upload(s3_server, packed_local, s3_bucket, "corrupt")
    shard = json.loads((packed_local / "packed.json").read_text())["shards"][0]
    size = shard["bytes"]
    s3_server.boto_client().put_object(
        Bucket=s3_bucket, Key=f"corrupt/{shard['file']}", Body=os.urandom(size)
    )
    line = error_line(train_cli(uri, tmp_path / "out", s3_server, [f"train.data.cache_dir={tmp_path}"]))
    assert f"{uri}/{shard['file']}" in line and "corrupt" in line


def test_missing_shard_object_is_named(packed_local, s3_server, s3_bucket, tmp_path):
    uri = upload(s3_server, packed_local, s3_bucket, "missing")
    shard = json.loads((packed_local / "packed.json").read_text())["shards"][0]["file"]
    s3_server.boto_client().delete_object(Bucket=s3_bucket, Key=f"missing/{shard}")
    line = error_line(train_cli(uri, tmp_path / "out", s3_server, [f"train.data.cache_dir={tmp_path}"]))
    assert f"{uri}/{shard}" in line and ("ObjectNotFound" in line or "no such" in line.lower())


def test_unreachable_endpoint_is_named(packed_local, s3_server, s3_bucket, tmp_path):
    uri = upload(s3_server, packed_local, s3_bucket, "unreachable")
    nowhere = S3Server("127.0.0.1", free_port(), s3_server.access_key, s3_server.secret_key)
    line = error_line(train_cli(uri, tmp_path / "out", nowhere, [f"train.data.cache_dir={tmp_path}"]))
    assert f"{uri}/packed.json" in line and nowhere.endpoint in line


def test_refused_credentials_are_named(packed_local, s3_auth_server, tmp_path):
    from kangaroo.storage import ObjectStore

    store = ObjectStore(s3_auth_server.endpoint, s3_auth_server.access_key, s3_auth_server.secret_key)
    store.ensure_bucket("packed-auth")
    uri = upload(s3_auth_server, packed_local, "packed-auth", "v1")
    wrong = S3Server(s3_auth_server.host, s3_auth_server.port, s3_auth_server.access_key, "not-the-secret")
    line = error_line(train_cli(uri, tmp_path / "out", wrong, [f"train.data.cache_dir={tmp_path}"]))
    assert f"{uri}/packed.json" in line and ("credentials" in line.lower() or "refused" in line.lower())


def test_the_same_corpus_in_another_folder_packs_the_same_records(corpus, packed_local, tmp_path):
    """Record order (hence every training batch) depends on the corpus's contents, not on where it sits: a
    copy in another folder packs the same media in the same order with the same samples."""
    import shutil

    copy = tmp_path / "elsewhere" / "corpus"
    shutil.copytree(corpus, copy, symlinks=True)
    rows = (copy / "dataset" / "dataset.jsonl").read_text().replace(str(corpus), str(copy))
    (copy / "dataset" / "dataset.jsonl").write_text(rows)  # the captioned dataset names its clips absolutely
    out = tmp_path / "packed"
    pack_training_data(load_params(PARAMS, "tiny"), copy, out, dataset=copy / "dataset", show_progress=False)

    def samples(packed: Path, root: Path) -> list[tuple]:
        return [
            (s["record"], s["source"], str(s["key"]).replace(str(root.resolve()), "CORPUS"))
            for s in read_jsonl(packed / "samples.jsonl")
        ]

    assert samples(out, copy) == samples(packed_local, corpus)
    assert len(samples(out, copy)) > 100


def test_text_token_counts_are_what_the_processor_builds(packed_local):
    """samples.jsonl's text_tokens (counted in batches by `kangaroo pack`) plus one frame's visual run is
    the length the processor gives each sample: what a stage plans its rows with."""
    import numpy as np

    from kangaroo.model.build import build_processor_only
    from kangaroo.packed.format import visual_run_length
    from kangaroo.packed.reader import PackedData
    from kangaroo.train.data import process_sample, sample_text
    from kangaroo.video import SampledFrames

    params = load_params(PARAMS, "tiny")
    processor = build_processor_only(params.model)
    data = PackedData.open(packed_local, params.storage)
    frame = SampledFrames(np.zeros((1, 64, 64, 3), np.uint8), np.zeros(1), np.zeros(1, np.int64))
    samples = read_jsonl(packed_local / "samples.jsonl")
    checked = set()
    for sample in samples:
        _, meta = data.record(sample["record"], sample["shard"])
        row = meta["rows"][sample["source"]][sample["position"]]
        user, reply = sample_text(sample["source"], row)
        processed = process_sample(processor, frame, sample["source"], sample["key"], user, reply, 64)
        assert len(processed) == sample["text_tokens"] - 1 + visual_run_length(processor, 1, 64), sample
        checked.add(sample["source"])
    assert checked == {"images", "image_qa", "captions", "qa"}


def test_a_stage_trains_only_the_question_categories_it_names(corpus, packed_local):
    """`question_categories` keeps the question rows (image_qa, qa) of those categories, as the corpus's own
    question files and the packed records count them, leaves the other sources alone; a category no question
    has, or categories on a stage without a question source, are errors naming them."""
    from kangaroo.model.build import build_processor_only
    from kangaroo.packed.reader import PackedData
    from kangaroo.train.errors import TrainInputError
    from kangaroo.train.stream import SOURCE_CODES, stage_index

    params = load_params(PARAMS, "tiny")
    processor = build_processor_only(params.model)
    data = PackedData.open(packed_local, params.storage)
    base = params.train.stage(STAGE).model_copy(
        update={"sources": ["image_qa", "qa", "captions"], "max_frames": 4, "context_length": 4096}
    )
    every = stage_index(data, base, processor)
    counts = {s: int((every.source == SOURCE_CODES.index(s)).sum()) for s in base.sources}
    shape_only = stage_index(data, base.model_copy(update={"question_categories": ["shape"]}), processor)

    def train_questions(name: str, category: str | None) -> int:
        rows = [r for r in read_jsonl(corpus / name) if r["split"] == "train"]
        return sum(category is None or r["category"] == category for r in rows)

    assert counts["image_qa"] == train_questions("image_questions.jsonl", None)
    kept = {s: int((shape_only.source == SOURCE_CODES.index(s)).sum()) for s in base.sources}
    assert 0 < kept["image_qa"] == train_questions("image_questions.jsonl", "shape") < counts["image_qa"]
    # clip questions: what the packed records themselves hold (the corpus's clips are curated first)
    shape_clip_questions = 0
    for sample in read_jsonl(packed_local / "samples.jsonl"):
        if sample["source"] == "qa":
            _, meta = data.record(sample["record"], sample["shard"])
            shape_clip_questions += meta["rows"]["qa"][sample["position"]]["category"] == "shape"
    assert 0 < kept["qa"] == shape_clip_questions < counts["qa"]
    assert kept["captions"] == counts["captions"] > 0
    with pytest.raises(ValueError, match="need a question source"):
        stage_one = params.train.stage(STAGE)
        stage_one.model_validate(
            {**stage_one.model_dump(), "sources": ["captions"], "question_categories": ["shape"]}
        )
    with pytest.raises(TrainInputError, match="no_such_category"):
        stage_index(
            data,
            base.model_copy(update={"sources": ["qa"], "question_categories": ["no_such_category"]}),
            processor,
        )
