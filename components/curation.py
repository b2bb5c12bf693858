"""Curation steps: plan shards, curate each shard (fan-out), merge the ledgers, caption the kept videos."""

from kfp.dsl import Dataset, Input, Output

from components.image import project_component


@project_component
def plan_shards(
    params_yaml: str, profile: str, overrides: list[str], input_uri: str, manifest: Output[Dataset]
) -> list[int]:
    """List the input videos (folder or s3:// prefix), write the manifest, return one index per shard."""
    from kangaroo.config import load_params_text
    from kangaroo.curation.sharding import write_manifest

    params = load_params_text(params_yaml, profile, overrides)
    return write_manifest(input_uri, manifest.path, params.curation.shard_size, params=params)


@project_component
def curate_shard(
    params_yaml: str,
    profile: str,
    overrides: list[str],
    manifest: Input[Dataset],
    shard_index: int,
    curated: Output[Dataset],
):
    """Decode, filter and ledger one shard of the manifest."""
    from kangaroo.config import load_params_text
    from kangaroo.curation.sharding import curate_manifest_shard

    params = load_params_text(params_yaml, profile, overrides)
    curate_manifest_shard(manifest.path, int(shard_index), curated.path, params)


@project_component
def merge_curation(shards: Input[list[Dataset]], curated: Output[Dataset]) -> str:
    """Merge the shards' ledgers into one; returns the kept/rejected counts as JSON."""
    import json

    from kangaroo.curation.ledger import merge_ledgers

    summary = merge_ledgers([shard.path for shard in shards], curated.path)
    curated.metadata.update(summary)
    return json.dumps(summary)


@project_component
def caption_dataset(
    params_yaml: str, profile: str, overrides: list[str], curated: Input[Dataset], dataset: Output[Dataset]
):
    """Caption the kept videos (frame-level, then video-level) into dataset.jsonl."""
    from kangaroo.config import load_params_text
    from kangaroo.curation.captioning import caption_curated

    params = load_params_text(params_yaml, profile, overrides)
    caption_curated(curated.path, dataset.path, params)
