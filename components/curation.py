"""Curation steps: plan shards, curate and caption each shard (fan-out), merge ledgers and captions; the
alignment model captioning and the gate score captions with."""

from kfp.dsl import Dataset, Input, Model, Output

from components.image import project_component


@project_component
def fingerprint_inputs(step_config: str, input_uri: str) -> str:
    """The identity of the input videos (keys + ETags/sizes, or paths + sizes/mtimes) as one sha256. Never
    cached: new or rewritten uploads under the same prefix change it, and with it the shard plan's key."""
    from kangaroo.config import load_params_text
    from kangaroo.curation.sharding import fingerprint_source

    return fingerprint_source(input_uri, load_params_text(step_config))


@project_component
def plan_shards(
    step_config: str, input_uri: str, input_fingerprint: str, manifest: Output[Dataset]
) -> list[int]:
    """List the input videos (folder or s3:// prefix), write the manifest, return one index per shard; the
    listing must match `input_fingerprint`, which keys this task's cache entry on the inputs' content."""
    from kangaroo.config import load_params_text
    from kangaroo.curation.sharding import write_manifest

    params = load_params_text(step_config)
    shard_size = params.curation.shard_size
    return write_manifest(
        input_uri, manifest.path, shard_size, params, expected_fingerprint=input_fingerprint
    )


@project_component
def shard_curation(
    step_config: str,
    manifest: Input[Dataset],
    shard_index: int,
    curated: Output[Dataset],
):
    """Decode, filter and ledger one shard of the manifest."""
    from kangaroo.config import load_params_text
    from kangaroo.curation.sharding import curate_manifest_shard

    params = load_params_text(step_config)
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
def alignment_model_preparation(
    step_config: str,
    corpus_uri: str,
    tower: Input[Model],
    alignment_model: Output[Model],
):
    """The CLIP-family model of `caption.alignment`: a configured checkpoint, or a tiny SigLIP trained on the
    corpus's stills over the pre-trained vision tower (locked-image tuning)."""
    from kangaroo.config import load_params_text
    from kangaroo.curation.alignment.train import prepare_alignment_model as prepare

    params = load_params_text(step_config)
    summary = prepare(params, corpus_uri, tower.path, alignment_model.path)
    alignment_model.metadata.update(
        {k: v for k, v in summary.items() if isinstance(v, (str, int, float, bool))}
    )


@project_component
def shard_captioning(
    step_config: str,
    curated: Input[Dataset],
    shard_index: int,
    alignment_model: Input[Model],
    resume_root: str,
    captioned: Output[Dataset],
):
    """Caption one curated shard (frame-level, then video-level) with alignment scores; a retried task resumes
    from `resume_root` (the checkpoint volume) and captions only the videos not written yet."""
    import os

    from kangaroo.config import load_params_text
    from kangaroo.curation.alignment import load_alignment
    from kangaroo.curation.captioning import caption_shard as caption

    params = load_params_text(step_config)
    alignment = load_alignment(alignment_model.path, params.caption.alignment.batch_size)
    writable = resume_root and os.access(resume_root, os.W_OK)  # the volume is mounted on the cluster
    summary = caption(
        curated.path, captioned.path, params, int(shard_index), alignment, resume_root if writable else None
    )
    captioned.metadata.update(
        {"captioned": summary.captioned, "failed": summary.failed, "resumed": summary.resumed}
    )


@project_component
def caption_merge(curated: Input[Dataset], shards: Input[list[Dataset]], dataset: Output[Dataset]) -> str:
    """Concatenate the shards' captions into dataset.jsonl beside the merged ledger; every kept video must be
    captioned or listed in caption_failures.jsonl. Returns the caption counts as JSON."""
    import json
    from dataclasses import asdict

    from kangaroo.curation.captioning import merge_captions as merge

    summary = asdict(merge([shard.path for shard in shards], curated.path, dataset.path))
    dataset.metadata.update(summary)
    return json.dumps(summary)
