"""Data curation: filter raw videos into a ledger, then caption the kept ones (docs/curation.md).

Library API (what the CLI and the KFP components call):

- `manifest.list_inputs(source, storage_settings=None) -> list[str]`, `manifest.make_shards(inputs,
  shard_size=None, num_shards=None) -> list[list[str]]`
- `runner.curate_shard(inputs, out_dir, params, shard=0, source=None) -> ShardSummary`
- `ledger.merge_ledgers(shard_dirs, out_dir) -> dict`
- `sharding.write_manifest(source, manifest_path, shard_size, params=None) -> list[int]`,
  `sharding.curate_manifest_shard(manifest_path, shard_index, out_dir, params) -> ShardSummary`
- `captioning.caption_curated(curated_dir, out_dir, params) -> CaptionSummary`
"""
