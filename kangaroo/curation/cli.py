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
    shard: Annotated[
        int | None,
        typer.Option("--shard", help="Only the ledger's shard I (0-based); default: every shard, merged."),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option("--backend", help="source, transformers or openai (default: caption.backend)."),
    ] = None,
    alignment_model: Annotated[
        Path | None,
        typer.Option(
            "--alignment-model",
            help="Folder written by `kangaroo alignment-model` (default: none, no alignment scores).",
        ),
    ] = None,
    params_file: ParamsFile = None,
    profile: Profile = None,
    overrides: Overrides = None,
) -> None:
    """Caption the kept videos: K key frames each, then one video caption merged from them.

    Resumable: rerun into the same --out and only videos not yet captioned (or failed) are done."""
    from kangaroo.curation.captioning import caption_curated, merge_captions, show_caption_summary
    from kangaroo.curation.captioning.base import CaptionError
    from kangaroo.curation.ledger import LEDGER_FILE, read_ledger

    params = resolve_params(params_file, profile, overrides)
    if backend is not None:
        params = params.model_copy(update={"caption": params.caption.model_copy(update={"backend": backend})})
    alignment = None
    if alignment_model is not None:
        from kangaroo.curation.alignment import AlignmentScorer

        alignment = AlignmentScorer.load(alignment_model)
    shards = sorted({row.shard for row in read_ledger(curated / LEDGER_FILE)})
    if shard is not None:
        if shard not in shards:
            raise CaptionError(f"--shard {shard}: {curated / LEDGER_FILE} has shards {shards}")
        show_caption_summary(caption_curated(curated, out, params, shard=shard, alignment=alignment))
        return
    shard_dirs = [out / "shards" / f"{index:05d}" for index in shards]
    for index, shard_dir in zip(shards, shard_dirs, strict=True):
        caption_curated(curated, shard_dir, params, shard=index, alignment=alignment)
    show_caption_summary(merge_captions(shard_dirs, curated, out))


def alignment_model(
    out: Annotated[Path, typer.Option("--out", help="Folder for the alignment model (+ summary.json).")],
    corpus: Annotated[
        Path | None, typer.Option("--corpus", help="Corpus folder whose images.jsonl holds captioned stills.")
    ] = None,
    tower: Annotated[
        Path | None,
        typer.Option("--tower", help="Pre-trained vision tower folder (`kangaroo pretrain-vision`)."),
    ] = None,
    params_file: ParamsFile = None,
    profile: Profile = None,
    overrides: Overrides = None,
) -> None:
    """The caption-video alignment model: `caption.alignment.model` when set, else a tiny SigLIP trained on
    the corpus's stills over the pre-trained vision tower."""
    from kangaroo.curation.alignment.train import prepare_alignment_model

    params = resolve_params(params_file, profile, overrides)
    prepare_alignment_model(params, corpus, tower, out)
