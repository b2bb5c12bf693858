"""Raw inputs enter the DAG by content: the uncached `fingerprint inputs` task names the uploads under a
prefix (keys + ETags/sizes, on a real S3 server on 127.0.0.1) and the shard plan is keyed on it, so a new
or rewritten upload under the same prefix changes the plan's cache key; the plan refuses a listing that
moved."""
# ruff: noqa: F811  (pytest fixtures imported from s3_server are used as test arguments)

from __future__ import annotations

import pytest
from s3_server import s3_bucket, s3_server  # noqa: F401  (pytest fixtures)

from kangaroo.config import load_params
from kangaroo.curation.sharding import InputsChanged, fingerprint_source, read_manifest, write_manifest


@pytest.fixture
def s3_params(s3_server, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    return load_params(profile="tiny", overrides=[f"storage.endpoint={s3_server.endpoint}"])


def test_uploads_under_the_same_prefix_change_the_fingerprint(s3_server, s3_bucket, s3_params, tmp_path):
    client = s3_server.boto_client()
    source = f"s3://{s3_bucket}/raw"
    client.put_object(Bucket=s3_bucket, Key="raw/a.mp4", Body=b"first video")
    client.put_object(Bucket=s3_bucket, Key="raw/b.mkv", Body=b"second video")
    first = fingerprint_source(source, s3_params)
    assert first.startswith("sha256:") and fingerprint_source(source, s3_params) == first

    client.put_object(Bucket=s3_bucket, Key="raw/notes.txt", Body=b"a sidecar")  # not an input
    client.put_object(Bucket=s3_bucket, Key="rawer/c.mp4", Body=b"another prefix")
    assert fingerprint_source(source, s3_params) == first

    client.put_object(Bucket=s3_bucket, Key="raw/new/c.mp4", Body=b"a new upload")
    added = fingerprint_source(source, s3_params)
    assert added != first
    client.put_object(Bucket=s3_bucket, Key="raw/a.mp4", Body=b"first video, re-encoded")
    rewritten = fingerprint_source(source, s3_params)
    assert rewritten not in (first, added)

    manifest = tmp_path / "manifest.json"
    assert write_manifest(source, manifest, 2, s3_params, expected_fingerprint=rewritten) == [0, 1]
    written = read_manifest(manifest)
    assert written["inputs_fingerprint"] == rewritten and written["num_inputs"] == 3
    with pytest.raises(InputsChanged, match="inputs changed since they were fingerprinted"):
        write_manifest(source, tmp_path / "stale.json", 2, s3_params, expected_fingerprint=first)
    assert not (tmp_path / "stale.json").exists()


def test_a_rewritten_local_file_changes_the_fingerprint(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "a.mp4").write_bytes(b"first")
    (videos / "b.mp4").write_bytes(b"second")
    first = fingerprint_source(videos)
    assert fingerprint_source(videos) == first
    (videos / "b.mp4").write_bytes(b"second, longer")
    assert fingerprint_source(videos) != first
