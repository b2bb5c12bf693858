"""`kangaroo curate` and `kangaroo caption`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kangaroo.cli_options import Overrides, ParamsFile, Profile, resolve_params


def curate(
    input: Annotated[
        str, typer.Option("--input", help="Folder of videos (recursive) or s3://bucket/prefix.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for ledger.jsonl and summary.json.")],
    shard: Annotated[
        int | None, typer.Option("--shard", help="Only this shard (0-based); default: every shard, merged.")
    ] = None,
    num_shards: Annotated[
        int | None,
        typer.Option("--num-shards", help="Split into N near-equal shards instead of curation.shard_size."),
    ] = None,
    params_file: ParamsFile = None,
    profile: Profile = None,
    overrides: Overrides = None,
) -> None:
    """Filter videos (duration, resolution, aspect, decodability, text, faces, static) into a ledger."""
    from kangaroo.curation.ledger import ShardSummary, merge_ledgers
    from kangaroo.curation.manifest import ManifestError, is_s3, list_inputs, make_shards
    from kangaroo.curation.runner import curate_shard, show_summary

    params = resolve_params(params_file, profile, overrides)
    source = input if is_s3(input) else str(Path(input).resolve())
    inputs = list_inputs(source, params.storage, params.curation.ignore_suffixes)
    shards = make_shards(inputs, params.curation.shard_size, num_shards)
    if shard is not None:
        if not 0 <= shard < len(shards):
            raise ManifestError(f"--shard {shard}: {source} has {len(shards)} shards (0..{len(shards) - 1})")
        show_summary(curate_shard(shards[shard], out, params, shard=shard, source=source))
        return
    shard_dirs = []
    for index, shard_inputs in enumerate(shards):
        shard_dir = out / "shards" / f"{index:05d}"
        curate_shard(shard_inputs, shard_dir, params, shard=index, source=source)
        shard_dirs.append(shard_dir)
    show_summary(ShardSummary(**merge_ledgers(shard_dirs, out)))


def caption(
    curated: Annotated[Path, typer.Option("--curated", help="Folder holding the curation ledger.jsonl.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for dataset.jsonl (+ a copy of ledger.jsonl).")],
    backend: Annotated[
        str | None,
        typer.Option("--backend", help="source, transformers or openai (default: caption.backend)."),
    ] = None,
    params_file: ParamsFile = None,
    profile: Profile = None,
    overrides: Overrides = None,
) -> None:
    """Caption the kept videos: K key frames each, then one video caption merged from them."""
    from kangaroo.curation.captioning import caption_curated, show_caption_summary

    params = resolve_params(params_file, profile, overrides)
    if backend is not None:
        params = params.model_copy(update={"caption": params.caption.model_copy(update={"backend": backend})})
    show_caption_summary(caption_curated(curated, out, params))
