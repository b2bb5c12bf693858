"""kangaroo.storage against a real S3 server process (moto) on 127.0.0.1: transfers, checksums,
multipart, retries, and the errors a user sees for bad credentials, buckets, endpoints and keys."""
# ruff: noqa: F811  (pytest fixtures imported from s3_server are used as test arguments)

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import pytest
from s3_server import (  # noqa: F401  (pytest fixtures)
    S3Server,
    flaky_proxy,
    free_port,
    s3_auth_server,
    s3_bucket,
    s3_server,
)

from kangaroo.errors import KangarooError
from kangaroo.storage import (
    BucketNotFoundError,
    EndpointUnreachableError,
    InvalidS3UrlError,
    ObjectNotFoundError,
    ObjectStore,
    S3Url,
    StorageAuthError,
    StorageError,
    StorageSettings,
    UnsafeKeyError,
    credentials_from_env,
    safe_local_path,
)
from kangaroo.storage.checksums import file_digests

MIB = 1024 * 1024


def make_store(server: S3Server, **overrides) -> ObjectStore:
    options = {
        "max_attempts": 4,
        "backoff_s": 0.01,
        "backoff_max_s": 0.05,
        "part_size_mib": 5,
        "read_timeout_s": 20,
    }
    options.update(overrides)
    return ObjectStore(server.endpoint, server.access_key, server.secret_key, secure=False, **options)


def write_random(path: Path, size: int, seed: int = 0) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = random_bytes(size, seed)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def random_bytes(size: int, seed: int) -> bytes:
    import random

    return random.Random(seed).randbytes(size)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- URLs and keys (pure) -------------------------------------------------------------------------------


def test_s3url_parse_and_join():
    url = S3Url.parse("s3://kangaroo/datasets/v1/train.jsonl")
    assert (url.bucket, url.key) == ("kangaroo", "datasets/v1/train.jsonl")
    assert str(url) == "s3://kangaroo/datasets/v1/train.jsonl"
    assert S3Url.parse("s3://kangaroo") == S3Url("kangaroo", "")
    assert S3Url.parse("s3://kangaroo/ds").prefix == "ds/"
    assert S3Url.parse("s3://kangaroo/ds").join("a/b.txt", "c") == S3Url("kangaroo", "ds/a/b.txt/c")


@pytest.mark.parametrize(
    "bad",
    [
        "http://kangaroo/x",
        "kangaroo/x",
        "s3://",
        "s3:///key",
        "s3://UPPER/x",
        "s3://ab/x",
        "s3://a_b_c/x",
        "s3://kangaroo/../etc/passwd",
        "s3://kangaroo/a/../../b",
        "s3://kangaroo//abs",
        "s3://kangaroo/a\\b",
    ],
)
def test_s3url_rejects_bad_urls(bad):
    with pytest.raises(InvalidS3UrlError, match="s3://|bucket|key|URL") as info:
        S3Url.parse(bad)
    assert isinstance(info.value, KangarooError)


@pytest.mark.parametrize(
    "key", ["../evil", "a/../../evil", "/etc/passwd", "a//b", "./a", "a\\..\\b", "C:x", ""]
)
def test_safe_local_path_refuses_escaping_keys(tmp_path, key):
    with pytest.raises(UnsafeKeyError):
        safe_local_path(tmp_path, key)


def test_safe_local_path_refuses_symlinked_escape(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    assert safe_local_path(root, "a/b.txt") == (root / "a" / "b.txt").resolve()
    with pytest.raises(UnsafeKeyError, match="outside"):
        safe_local_path(root, "link/x.txt")


def test_credentials_from_env_order():
    both = {
        "AWS_ACCESS_KEY_ID": "a",
        "AWS_SECRET_ACCESS_KEY": "s",
        "MINIO_ROOT_USER": "m",
        "MINIO_ROOT_PASSWORD": "p",
    }
    assert credentials_from_env(both).access_key == "a"
    minio_only = {"MINIO_ROOT_USER": "m", "MINIO_ROOT_PASSWORD": "p"}
    assert credentials_from_env(minio_only).source == "MINIO_ROOT_USER"
    assert credentials_from_env({}).access_key is None
    assert "s3cr3t" not in repr(
        credentials_from_env({"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s3cr3t"})
    )


def test_multipart_etag_prediction_matches_definition(tmp_path):
    path = tmp_path / "f.bin"
    write_random(path, 12 * MIB + 7)
    data = path.read_bytes()
    parts = [data[i : i + 5 * MIB] for i in range(0, len(data), 5 * MIB)]
    expected = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-3"
    assert file_digests(path, 5 * MIB).etag == expected
    assert file_digests(path, 16 * MIB).etag == hashlib.md5(data).hexdigest()


# ---- transfers against the real server ------------------------------------------------------------------


def test_upload_download_roundtrip_records_sha256(s3_server, s3_bucket, tmp_path):
    store = make_store(s3_server)
    source = tmp_path / "in" / "clip.json"
    digest = write_random(source, 1000)
    info = store.upload_file(source, f"s3://{s3_bucket}/runs/clip.json")
    assert info.size == 1000 and info.sha256 == digest
    head = s3_server.boto_client().head_object(Bucket=s3_bucket, Key="runs/clip.json")
    assert head["Metadata"]["sha256"] == digest  # visible to any S3 tool, not only ours
    target = tmp_path / "out" / "nested" / "clip.json"
    store.download_file(f"s3://{s3_bucket}/runs/clip.json", target)
    assert sha256_of(target) == digest
    assert [p.name for p in target.parent.iterdir()] == ["clip.json"]  # no temp file left behind


def test_multipart_upload_of_large_file(s3_server, s3_bucket, tmp_path):
    store = make_store(s3_server, part_size_mib=5)
    source = tmp_path / "ckpt.bin"
    digest = write_random(source, 11 * MIB + 123, seed=1)
    info = store.upload_file(source, f"s3://{s3_bucket}/ckpt/model.bin")
    assert info.etag.endswith("-3"), info.etag  # 5 + 5 + 1 MiB parts
    assert info.etag == file_digests(source, 5 * MIB).etag
    out = tmp_path / "back.bin"
    store.download_file(f"s3://{s3_bucket}/ckpt/model.bin", out)
    assert sha256_of(out) == digest


def test_download_verifies_plain_objects_by_etag(s3_server, s3_bucket, tmp_path):
    """An object uploaded by another tool (no sha256 metadata) is still checked against its MD5 ETag."""
    s3_server.boto_client().put_object(Bucket=s3_bucket, Key="other/x.bin", Body=b"x" * 4096)
    store = make_store(s3_server)
    assert store.stat(f"s3://{s3_bucket}/other/x.bin").sha256 is None
    store.download_file(f"s3://{s3_bucket}/other/x.bin", tmp_path / "x.bin")
    assert (tmp_path / "x.bin").read_bytes() == b"x" * 4096


def test_dir_roundtrip_and_prefix_listing(s3_server, s3_bucket, tmp_path):
    store = make_store(s3_server)
    src = tmp_path / "dataset"
    digests = {
        rel: write_random(src / rel, 200 + i, seed=i)
        for i, rel in enumerate(["a.jsonl", "v/1.mp4", "v/w/2.mp4"])
    }
    keys = store.upload_dir(src, f"s3://{s3_bucket}/data")
    store.upload_file(src / "a.jsonl", f"s3://{s3_bucket}/database/a.jsonl")  # shares the string prefix
    assert keys == ["data/a.jsonl", "data/v/1.mp4", "data/v/w/2.mp4"]
    assert store.list(f"s3://{s3_bucket}/data") == keys
    assert store.list(f"s3://{s3_bucket}/data/") == keys
    assert len(store.list(f"s3://{s3_bucket}")) == 4
    out = tmp_path / "copy"
    written = store.download_dir(f"s3://{s3_bucket}/data", out)
    assert len(written) == 3
    assert {p.relative_to(out).as_posix(): sha256_of(p) for p in out.rglob("*") if p.is_file()} == digests


@pytest.mark.parametrize("evil_key", ["ds/../../escaped.txt", "ds//tmp/abs.txt", "ds/sub/../../../x.txt"])
def test_download_dir_refuses_keys_escaping_the_folder(s3_server, s3_bucket, tmp_path, evil_key):
    client = s3_server.boto_client()
    client.put_object(Bucket=s3_bucket, Key="ds/good.txt", Body=b"fine")
    client.put_object(Bucket=s3_bucket, Key=evil_key, Body=b"evil")
    assert evil_key in [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    target = tmp_path / "deep" / "target"
    with pytest.raises(UnsafeKeyError, match="refused|outside"):
        make_store(s3_server).download_dir(f"s3://{s3_bucket}/ds", target)
    assert not any(p.is_file() for p in tmp_path.rglob("*")), "nothing may be written, in or outside"


# ---- failures -------------------------------------------------------------------------------------------


def test_wrong_credentials_give_auth_error(s3_auth_server, tmp_path):
    good = make_store(s3_auth_server)
    good.ensure_bucket("auth-bucket")
    source = tmp_path / "f.txt"
    write_random(source, 100)
    good.upload_file(source, "s3://auth-bucket/f.txt")

    wrong_secret = ObjectStore(
        s3_auth_server.endpoint, s3_auth_server.access_key, "not-the-secret", max_attempts=2
    )
    with pytest.raises(StorageAuthError) as info:
        wrong_secret.download_file("s3://auth-bucket/f.txt", tmp_path / "g.txt")
    message = str(info.value)
    assert s3_auth_server.endpoint in message and "auth-bucket" in message and "refused" in message
    assert not (tmp_path / "g.txt").exists()

    unknown_key = ObjectStore(s3_auth_server.endpoint, "AKIAUNKNOWN", "x", max_attempts=2)
    with pytest.raises(StorageAuthError, match="InvalidAccessKeyId"):
        unknown_key.upload_file(source, "s3://auth-bucket/h.txt")
    with pytest.raises(StorageAuthError):
        unknown_key.list("s3://auth-bucket/")


def test_missing_bucket_and_key_are_named(s3_server, s3_bucket, tmp_path):
    store = make_store(s3_server)
    source = tmp_path / "f.txt"
    write_random(source, 10)
    with pytest.raises(BucketNotFoundError, match="no-such-bucket.*does not exist"):
        store.upload_file(source, "s3://no-such-bucket/f.txt")
    with pytest.raises(BucketNotFoundError, match=s3_server.endpoint):
        store.download_file("s3://no-such-bucket/f.txt", tmp_path / "g.txt")
    with pytest.raises(BucketNotFoundError):
        store.list("s3://no-such-bucket/")
    with pytest.raises(ObjectNotFoundError, match=f"s3://{s3_bucket}/missing.txt"):
        store.download_file(f"s3://{s3_bucket}/missing.txt", tmp_path / "g.txt")
    assert not (tmp_path / "g.txt").exists()


def test_unreachable_endpoint_is_retried_then_named(tmp_path, caplog):
    port = free_port()  # nothing listens here
    store = ObjectStore(f"127.0.0.1:{port}", "k", "s", max_attempts=3, backoff_s=0.01, connect_timeout_s=2)
    with caplog.at_level(logging.WARNING, logger="kangaroo.storage"):
        with pytest.raises(EndpointUnreachableError, match=f"127.0.0.1:{port}.*after 3 attempts"):
            store.list("s3://kangaroo/data")
    assert sum("retrying" in r.message for r in caplog.records) == 2


def test_server_dying_mid_upload_is_retried(flaky_proxy, s3_server, s3_bucket, tmp_path, caplog):
    source = tmp_path / "big.bin"
    digest = write_random(source, 11 * MIB, seed=3)
    store = make_store(flaky_proxy.server, parallel_uploads=1)
    flaky_proxy.cut_after(6 * MIB, refuse=2)  # dies during part 2, refuses 2 connections, comes back
    with caplog.at_level(logging.WARNING, logger="kangaroo.storage"):
        info = store.upload_file(source, f"s3://{s3_bucket}/big.bin")
    assert any("retrying" in r.message for r in caplog.records)
    assert flaky_proxy.refused_connections == 2
    assert info.sha256 == digest
    out = tmp_path / "back.bin"
    make_store(s3_server).download_file(f"s3://{s3_bucket}/big.bin", out)
    assert sha256_of(out) == digest


def test_server_gone_mid_upload_leaves_no_object(flaky_proxy, s3_server, s3_bucket, tmp_path):
    source = tmp_path / "big.bin"
    write_random(source, 11 * MIB, seed=4)
    store = make_store(flaky_proxy.server, max_attempts=2)
    flaky_proxy.cut_after(3 * MIB)  # dies in part 1 and stays down
    with pytest.raises(EndpointUnreachableError, match=f"s3://{s3_bucket}/big.bin"):
        store.upload_file(source, f"s3://{s3_bucket}/big.bin")
    keys = [o["Key"] for o in s3_server.boto_client().list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
    assert keys == []  # an incomplete multipart upload is never visible as an object


def test_server_gone_mid_download_leaves_no_file(flaky_proxy, s3_server, s3_bucket, tmp_path):
    source = tmp_path / "big.bin"
    digest = write_random(source, 6 * MIB, seed=5)
    make_store(s3_server).upload_file(source, f"s3://{s3_bucket}/big.bin")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    store = make_store(flaky_proxy.server, max_attempts=2)

    flaky_proxy.cut_after(2 * MIB)
    with pytest.raises(StorageError, match="big.bin"):
        store.download_file(f"s3://{s3_bucket}/big.bin", out_dir / "big.bin")
    assert os.listdir(out_dir) == []  # neither the target nor a temp part file

    flaky_proxy.restore()
    flaky_proxy.cut_after(2 * MIB, refuse=1)  # transient this time: retried from scratch
    make_store(flaky_proxy.server, max_attempts=3).download_file(
        f"s3://{s3_bucket}/big.bin", out_dir / "big.bin"
    )
    assert sha256_of(out_dir / "big.bin") == digest
    assert os.listdir(out_dir) == ["big.bin"]


def test_from_settings_uses_params_and_env(s3_server, s3_bucket, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    settings = StorageSettings(endpoint=s3_server.endpoint, bucket=s3_bucket, secure=False, part_size_mib=5)
    store = ObjectStore.from_settings(settings)
    assert store.credentials.source == "AWS_ACCESS_KEY_ID" and store.part_size == 5 * MIB
    write_random(tmp_path / "f.bin", 10)
    store.upload_file(tmp_path / "f.bin", S3Url(settings.bucket, "f.bin"))
    assert store.exists(f"s3://{s3_bucket}/f.bin")
